"""The audit as a self-contained HTML page: no scripts, no external assets, opens anywhere.

The pictures: for each injectate and region, a grid of depth (rows) by tissue (columns) over
the field-by-field case space; and for the site space, a grid of site (rows) by injectate
(columns). Each cell is a bar split by the share of each recommended modality among the valid
cases in it; any modality present gets at least a visible sliver (MIN_SHARE), so a rare answer
such as landmark is never drawn invisibly thin. Cells with no valid case are contradictions.
The decision table (guidance_rules.audit.table) follows when the caller supplies it.
"""

from __future__ import annotations

import html
import json
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from guidance_rules.audit.check import AuditReport
from guidance_rules.model import Modality
from guidance_rules.rulebase.conditions import CASE_FIELDS

if TYPE_CHECKING:
    from guidance_rules.audit.table import SiteTable

MIN_SHARE = 12.0  # percent of a cell's width given to any modality present in it

COLOURS = {"ultrasound": "#2f6fb3", "fluoroscopy": "#d9822b", "both": "#7b4fa6", "landmark": "#3f9a4a"}
BASE_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#1d232a;max-width:1400px}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
.verdict{display:inline-block;padding:4px 12px;border-radius:4px;color:#fff;font-weight:600}
table{border-collapse:collapse;font-size:13px} td,th{padding:3px 8px;border-bottom:1px solid #eee;text-align:left;vertical-align:top}
"""  # shared by the audit and diff reports
CSS = (
    BASE_CSS
    + """
.pass{background:#2e7d32}.fail{background:#c62828}
.legend span{display:inline-block;margin-right:14px;font-size:13px}
.sw{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:-1px;border-radius:2px}
.panels{display:grid;grid-template-columns:repeat(auto-fill,minmax(430px,1fr));gap:18px}
.panel h3{font-size:14px;margin:0 0 4px}
.grid td,.grid th{padding:1px;border:none;font-size:11px}
.grid th.col{writing-mode:vertical-rl;transform:rotate(180deg);height:84px;font-weight:500}
.cell{display:flex;width:44px;height:26px;border-radius:3px;overflow:hidden;
 background:repeating-linear-gradient(45deg,#eee,#eee 4px,#f8f8f8 4px,#f8f8f8 8px)}
.cell div{height:100%}
.decision-tables{display:grid;grid-template-columns:repeat(auto-fill,minmax(520px,1fr));gap:16px}
.site-table h3{font-size:14px;margin:0 0 2px}.defaults{font-size:11px;color:#555;margin:0 0 4px}
table.decision th{font-weight:500;padding:1px 6px;font-size:11px}
td.dt{color:#fff;text-align:center;font-weight:600;padding:1px 6px;min-width:44px;border:1px solid #fff;font-size:11px}
.bar{background:#2f6fb3;height:10px;display:inline-block;border-radius:2px}
.error{color:#c62828;font-weight:600}.warning{color:#a86200;font-weight:600}
code{font-size:12px;background:#f4f4f4;padding:1px 4px;border-radius:3px}
"""
)


def _e(value: Any) -> str:
    return html.escape(str(value))


def _legend() -> str:
    parts = [f'<span><i class="sw" style="background:{c}"></i>{_e(m)}</span>' for m, c in COLOURS.items()]
    parts.append('<span><i class="sw" style="background:#eee"></i>no valid case (contradiction)</span>')
    note = f"Any modality present in a cell gets at least {MIN_SHARE:.0f}% of its width; hover for exact counts."
    return f'<p class="legend">{"".join(parts)}</p><p class="legend">{note}</p>'


def widths(counts: Counter[str]) -> dict[str, float]:
    """Percent widths per modality present: proportional, but never below MIN_SHARE."""
    total = sum(counts.values())
    present = [m for m in COLOURS if counts[m]]
    raw = {m: 100 * counts[m] / total for m in present}
    small = {m for m in present if raw[m] < MIN_SHARE}
    rest = sum(raw[m] for m in present if m not in small)
    room = 100 - MIN_SHARE * len(small)
    return {m: MIN_SHARE if m in small else raw[m] * room / rest for m in present}


def _cell(counts: Counter[str]) -> str:
    total = sum(counts.values())
    if not total:
        return '<div class="cell" title="no valid case"></div>'
    bars = "".join(f'<div style="width:{w:.2f}%;background:{COLOURS[m]}"></div>' for m, w in widths(counts).items())
    tip = ", ".join(f"{m} {counts[m]} ({100 * counts[m] / total:.0f}%)" for m in COLOURS if counts[m])
    return f'<div class="cell" title="{_e(tip)}" data-total="{total}">{bars}</div>'


def site_heatmap(heat: Counter[tuple[Any, ...]]) -> str:
    """Site (rows) by injectate (columns) over the site space: every variance set and flag."""
    by_site: dict[str, Counter[tuple[str, str]]] = {}
    for key, n in heat.items():
        if len(key) > 5 and key[5]:
            by_site.setdefault(key[5], Counter())[(key[0], key[4])] += n
    if not by_site:
        return "<p>The site space was not enumerated.</p>"
    injectates = CASE_FIELDS["injectate"].values
    head = "".join(f'<th class="col">{_e(i)}</th>' for i in injectates)
    rows = []
    for site, counts in by_site.items():
        cells = "".join(f"<td>{_cell(Counter({m.value: counts[(i, m.value)] for m in Modality}))}</td>" for i in injectates)
        rows.append(f'<tr><th><a href="#site-{_e(site)}">{_e(site)}</a></th>{cells}</tr>')
    return f'<table class="grid" id="site-grid"><tr><th></th>{head}</tr>{"".join(rows)}</table>'


def heatmaps(heat: Counter[tuple[Any, ...]]) -> str:
    depths, tissues = CASE_FIELDS["depth"].values, CASE_FIELDS["tissue"].values
    folded: Counter[tuple[Any, ...]] = Counter()
    for key, n in heat.items():
        folded[key[:5]] += n
    heat = folded
    panels = []
    for injectate in CASE_FIELDS["injectate"].values:
        for region in CASE_FIELDS["region"].values:
            rows = []
            for depth in depths:
                cells = []
                for tissue in tissues:
                    counts: Counter[str] = Counter({m.value: heat.get((injectate, region, depth, tissue, m.value), 0) for m in Modality})
                    cells.append(f"<td>{_cell(counts)}</td>")
                rows.append(f"<tr><th>{_e(depth)}</th>{''.join(cells)}</tr>")
            head = "".join(f'<th class="col">{_e(t)}</th>' for t in tissues)
            panels.append(
                f'<div class="panel"><h3>{_e(injectate)} · {_e(region)}</h3>'
                f'<table class="grid"><tr><th></th>{head}</tr>{"".join(rows)}</table></div>'
            )
    return f'<div class="panels">{"".join(panels)}</div>'


def render_html(report: AuditReport, tables: list[SiteTable] | None = None) -> str:
    s = report.summary()
    verdict = '<span class="verdict pass">PASSED</span>' if report.passed else '<span class="verdict fail">FAILED</span>'
    cases = "".join(
        f"<tr><td>{_e(n)}</td><td>{c['enumerated']:,}</td><td>{c['evaluated']:,}</td><td>{c['valid']:,}</td></tr>"
        for n, c in s["cases"].items()
    )
    modalities = "".join(
        f'<tr><td><i class="sw" style="background:{COLOURS[m]}"></i>{_e(m)}</td><td>{n:,}</td></tr>'
        for m, n in s["modality_counts"].items()
    )
    top = max(s["rule_firing_counts"].values(), default=1) or 1
    rules = "".join(
        f"<tr><td><code>{_e(r)}</code></td><td>{n:,}</td><td><span class='bar' style='width:{300 * n / top:.1f}px'></span></td></tr>"
        for r, n in sorted(s["rule_firing_counts"].items(), key=lambda item: -item[1])
    )
    findings = (
        "".join(
            f'<tr><td class="{_e(f.level)}">{_e(f.level)}</td><td>{_e(f.check)}</td><td>{_e(f.message)}'
            + (f"<br><code>{_e(json.dumps(f.case))}</code>" if f.case else "")
            + "</td></tr>"
            for f in report.findings
        )
        or "<tr><td colspan=3>No findings.</td></tr>"
    )
    free = next((sp for sp in report.spaces if sp.name == "free"), report.spaces[0] if report.spaces else None)
    picture = heatmaps(free.heat) if free else "<p>No case space was enumerated.</p>"
    space_name = {"free": "Field-by-field (no site)", "sites": "Site"}.get(free.name, free.name) if free else ""
    sites = next((sp for sp in report.spaces if sp.name == "sites"), None)
    site_picture = site_heatmap(sites.heat) if sites else "<p>The site space was not enumerated.</p>"
    if tables:
        from guidance_rules.audit.table import to_html

        decision = (
            "<h2>Decision table</h2><p>For each catalogue site: injectate by set of anatomy variances, every other "
            "field at the site's defaults (also <code>guidance-rules table</code>).</p>" + to_html(tables, standalone=False)
        )
    else:
        decision = ""
    never = ", ".join(s["never_fired"]) or "none"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>guidance-rules audit {_e(s["ruleset"]["version"])}</title>
<style>{CSS}</style></head><body>
<h1>Rule-coverage audit {verdict}</h1>
<p>Rule base <b>{_e(s["ruleset"]["version"])}</b> <code>{_e(s["ruleset"]["digest"])}</code> ·
{s["seconds"]} s with {s["workers"]} worker processes</p>
<h2>Case space</h2>
<table id="cases"><tr><th>space</th><th>enumerated</th><th>evaluated once</th><th>valid</th></tr>{cases}</table>
<h2>Findings</h2>
<table id="findings"><tr><th>level</th><th>check</th><th>detail</th></tr>{findings}</table>
<h2>Recommended modality over the case space</h2>
<p>{_e(space_name)} space: for each injectate and region, depth by tissue. Each cell splits its valid
cases by recommended modality; hover for counts.</p>
{_legend()}
{picture}
<h2>Recommended modality over the site space</h2>
<p>Each catalogue site by injectate, over every set of anatomy variances and every flag.</p>
{site_picture}
{decision}
<h2>Modality counts (both spaces)</h2>
<table id="modalities">{modalities}</table>
<h2>Rule firing counts</h2>
<p>Never fired: {_e(never)}</p>
<table id="rules"><tr><th>rule</th><th>cases</th><th></th></tr>{rules}</table>
</body></html>
"""


def write_html(report: AuditReport, path: Path, tables: list[SiteTable] | None = None) -> None:
    path.write_text(render_html(report, tables), encoding="utf-8")
