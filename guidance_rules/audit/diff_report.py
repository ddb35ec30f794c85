"""The rule-change impact as a self-contained HTML page (no scripts, no external assets).

The picture: the case space as grids, each cell shaded by the share of its valid cases whose
answer changed (white: none; full red: all). Site cases: site x injectate. Approach cases: site
and approach (rows) x injectate. Field-by-field cases: for each injectate, region and depth (rows)
x tissue (columns). Hover a cell for counts.
"""

from __future__ import annotations

import html
import json
from collections import Counter
from pathlib import Path
from typing import Any

from guidance_rules.audit.diff import DiffReport
from guidance_rules.audit.report import BASE_CSS
from guidance_rules.rulebase.conditions import CASE_FIELDS

CSS = (
    BASE_CSS
    + """
.same{background:#2e7d32}.changed{background:#c62828}
.panels{display:grid;grid-template-columns:repeat(auto-fill,minmax(430px,1fr));gap:18px}
.panel h3{font-size:14px;margin:0 0 4px}
.grid td,.grid th{padding:1px;border:none;font-size:11px}
.grid th.col{writing-mode:vertical-rl;transform:rotate(180deg);height:96px;font-weight:500}
.cell{width:40px;height:22px;border-radius:3px;border:1px solid #e4e4e4}
.none{background:repeating-linear-gradient(45deg,#eee,#eee 4px,#f8f8f8 4px,#f8f8f8 8px)}
code{font-size:12px;background:#f4f4f4;padding:1px 4px;border-radius:3px}
"""
)


def _e(value: Any) -> str:
    return html.escape(str(value))


def _cell(cells: Counter[tuple[str, ...]], key: tuple[str, ...]) -> str:
    valid, changed = cells[(*key, "valid")], cells[(*key, "changed")]
    if not valid:
        return '<td><div class="cell none" title="no valid case"></div></td>'
    share = changed / valid
    colour = f"rgba(198,40,40,{0.12 + 0.88 * share:.3f})" if changed else "#fff"
    tip = f"{changed:,} of {valid:,} changed ({100 * share:.1f}%)"
    return f'<td><div class="cell" style="background:{colour}" title="{_e(tip)}" data-changed="{changed}"></div></td>'


def _grid(cells: Counter[tuple[str, ...]], rows: list[tuple[str, ...]], cols: list[str], label: str) -> str:
    head = "".join(f'<th class="col">{_e(c)}</th>' for c in cols)
    body = "".join(f"<tr><th>{_e(row[-1])}</th>{''.join(_cell(cells, (*row, c)) for c in cols)}</tr>" for row in rows)
    return f'<table class="grid" aria-label="{_e(label)}"><tr><th></th>{head}</tr>{body}</table>'


def render(report: DiffReport, old_dir: str = "old", new_dir: str = "new") -> str:
    s = report.summary()
    injectates = list(CASE_FIELDS["injectate"].values)
    parts = [
        "<!doctype html><html lang=en><meta charset=utf-8><title>Rule-change impact</title>",
        f"<style>{CSS}</style>",
        "<h1>Rule-change impact</h1>",
        f"<p><code>{_e(old_dir)}</code> ({_e(s['old']['version'])}, {_e(s['old']['digest'][:19])}) → "
        f"<code>{_e(new_dir)}</code> ({_e(s['new']['version'])}, {_e(s['new']['digest'][:19])})</p>",
        f'<p><span class="verdict {"changed" if report.changed else "same"}">'
        f"{'CHANGED: ' + format(s['changed_cases'], ',') + ' cases' if report.changed else 'UNCHANGED'}</span></p>",
        "<table><tr><th>space</th><th>enumerated</th><th>valid before</th><th>valid after</th><th>changed</th></tr>",
        *(
            f"<tr><td>{_e(n)}</td><td>{c['enumerated']:,}</td><td>{c['valid_old']:,}</td><td>{c['valid_new']:,}</td>"
            f"<td>{c['changed']:,}</td></tr>"
            for n, c in s["cases"].items()
        ),
        "</table>",
        "<h2>Where the answers changed</h2>",
        "<p>Each cell is shaded by the share of its valid cases whose answer changed; hover for counts. Hatched: no valid case.</p>",
    ]
    site_cells = report.cells.get("sites", Counter()) + report.cells.get("equipment", Counter())  # both by site x injectate
    sites = sorted({k[0] for k in site_cells})
    if sites:
        parts.append('<div class="panel"><h3>Site cases (with every set of equipment): site x injectate</h3>')
        parts.append(_grid(site_cells, [(site,) for site in sites], injectates, "site cases"))
        parts.append("</div>")
    approach_cells = report.cells.get("approach", Counter())  # keyed by "site approach" x injectate
    paths = sorted({k[0] for k in approach_cells})
    if paths:
        parts.append('<div class="panel"><h3>Approach cases: site and approach x injectate</h3>')
        parts.append(_grid(approach_cells, [(path,) for path in paths], injectates, "approach cases"))
        parts.append("</div>")
    free = report.cells.get("free", Counter())
    if free:
        tissues = list(CASE_FIELDS["tissue"].values)
        rows = [f"{r} {d}" for r in CASE_FIELDS["region"].values for d in CASE_FIELDS["depth"].values]
        parts.append('<h3>Field-by-field cases: region and depth x tissue, one panel per injectate</h3><div class="panels">')
        for injectate in injectates:
            parts.append(f'<div class="panel"><h3>{_e(injectate)}</h3>')
            parts.append(_grid(free, [(injectate, row) for row in rows], tissues, f"free cases, {injectate}"))
            parts.append("</div>")
        parts.append("</div>")
    parts.append("<h2>Groups</h2>")
    if not s["groups"]:
        parts.append("<p>No case's answer differs.</p>")
    else:
        parts.append(
            "<table><tr><th>space</th><th>site</th><th>old → new</th><th>cases</th><th>changed</th><th>rules firing differently</th>"
            "<th>example</th></tr>"
        )
        for g in s["groups"]:
            rules = ", ".join(f"{r} (old {n['old_only']:,} / new {n['new_only']:,})" for r, n in g["rules"].items())
            changed = ", ".join(f"{p} {n:,}" for p, n in g["changed"].items())
            parts.append(
                f"<tr><td>{_e(g['space'])}</td><td>{_e(g['site'] or '—')}</td><td>{_e(g['old'])} → {_e(g['new'])}</td>"
                f"<td>{g['count']:,}</td><td>{_e(changed)}</td><td>{_e(rules or '—')}</td>"
                f"<td><code>{_e(json.dumps(g['example']))}</code></td></tr>"
            )
        parts.append("</table>")
    parts.append("</html>")
    return "\n".join(parts)


def write_html(report: DiffReport, path: Path, old_dir: str = "old", new_dir: str = "new") -> None:
    path.write_text(render(report, old_dir, new_dir), encoding="utf-8")
