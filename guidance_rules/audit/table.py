"""The decision table: for each catalogue site, injectate x anatomy-variance set -> modality.

Every other field is left to the site record (its defaults), so a clinician can read what the
rule base answers for each site in its ordinary form, and review all sites in minutes. Formats:
CSV (one row per cell, for diffing and spreadsheets), Markdown and a self-contained HTML fragment
(also a section of the audit report).
"""

from __future__ import annotations

import csv
import html
import io
from dataclasses import dataclass

from pydantic import ValidationError

from guidance_rules.model import Modality
from guidance_rules.recommendation.recommender import Recommender
from guidance_rules.rulebase.conditions import CASE_FIELDS
from guidance_rules.rulebase.domain import KnowledgeBase
from guidance_rules.rulebase.space import VARIANCE_SETS

FORMATS = ("md", "csv", "html")
SHORT = {Modality.ULTRASOUND: "US", Modality.FLUOROSCOPY: "FL", Modality.BOTH: "US+FL", Modality.LANDMARK: "LM"}
COLOURS = {"ultrasound": "#2f6fb3", "fluoroscopy": "#d9822b", "both": "#7b4fa6", "landmark": "#3f9a4a"}
DEFAULT_FIELDS = ("depth", "tissue", "target_size", "palpable", "near_neurovascular", "bone_obscures_path", "precise_plane")


@dataclass(frozen=True)
class SiteTable:
    site: str
    title: str
    defaults: str  # the site's values the table holds fixed, as "field=value, ..."
    injectates: tuple[str, ...]
    rows: tuple[tuple[tuple[str, ...], tuple[Modality, ...]], ...]  # (variance set, modality per injectate)
    omitted: tuple[tuple[tuple[str, ...], str], ...] = ()  # variance sets the site contradicts, with the rule base's reason


def decision_tables(knowledge: KnowledgeBase, recommender: Recommender | None = None) -> list[SiteTable]:
    """One table per catalogue site, computed through the real rule engine."""
    rec = recommender or Recommender(knowledge, cache_size=0)
    injectates = tuple(str(v) for v in CASE_FIELDS["injectate"].values)
    tables = []
    for key, site in knowledge.sites.items():
        cases = [
            {"site": key, "injectate": injectate, "anatomy_variance": list(variances)}
            for variances in VARIANCE_SETS
            for injectate in injectates
        ]
        answers = rec.recommend_many(cases)
        width = len(injectates)
        rows, omitted = [], []
        for i, variances in enumerate(VARIANCE_SETS):
            row = answers[i * width : (i + 1) * width]
            invalid = [a for a in row if isinstance(a, ValidationError)]
            if len(invalid) == width:  # the variance set contradicts the site (C-EFFUSION-TISSUE, say): no row
                said = invalid[0].errors(include_url=False)[0]["msg"]
                # the constraint behind it, by id, so every variance set it rules out shares one note
                reason = next((f"{c.id}: {c.message}" for c in knowledge.constraints if c.message in said), said)
                omitted.append((tuple(map(str, variances)), reason))
                continue
            modalities = []
            for answer in row:
                if isinstance(answer, Exception):
                    raise answer  # an engine fault, or a contradiction for some injectates only: never a silent gap
                modalities.append(answer.modality)
            rows.append((tuple(map(str, variances)), tuple(modalities)))
        resolved = rec.resolve(cases[0]).values
        shown = ", ".join(f"{f}={_show(resolved[f])}" for f in DEFAULT_FIELDS if f in resolved)
        tables.append(SiteTable(key, site.title, f"{resolved['region']}: {shown}", injectates, tuple(rows), tuple(omitted)))
    return tables


def _show(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _variances(variances: tuple[str, ...]) -> str:
    return " + ".join(variances) if variances else "none"


def _omitted(table: SiteTable) -> str:
    """One line naming the variance sets left out at this site and why (the same reason once)."""
    reasons: dict[str, list[str]] = {}
    for variances, reason in table.omitted:
        reasons.setdefault(reason, []).append(_variances(variances))
    return " ".join(f"Not valid here, so not shown: {', '.join(sets)} ({reason})." for reason, sets in reasons.items())


def to_csv(tables: list[SiteTable]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["site", "injectate", "anatomy_variance", "modality"])
    for table in tables:
        for variances, modalities in table.rows:
            for injectate, modality in zip(table.injectates, modalities, strict=True):
                writer.writerow([table.site, injectate, ";".join(variances), modality.value])
    return out.getvalue()


def to_markdown(tables: list[SiteTable]) -> str:
    legend = ", ".join(f"{short} = {m.value}" for m, short in SHORT.items())
    lines = [
        "# Decision table",
        "",
        f"Recommended modality for each site, injectate and set of anatomy variances, with every other "
        f"field at the site's defaults. {legend}.",
    ]
    for table in tables:
        lines += ["", f"## {table.title} (`{table.site}`)", "", f"Defaults: {table.defaults}", ""]
        lines.append("| anatomy variance | " + " | ".join(table.injectates) + " |")
        lines.append("|---|" + "---|" * len(table.injectates))
        for variances, modalities in table.rows:
            lines.append(f"| {_variances(variances)} | " + " | ".join(SHORT[m] for m in modalities) + " |")
        if table.omitted:
            lines += ["", _omitted(table)]
    return "\n".join(lines) + "\n"


def to_html(tables: list[SiteTable], standalone: bool = True) -> str:
    """The tables as HTML; `standalone=False` gives the fragment the audit report embeds."""
    parts = []
    for table in tables:
        head = "".join(f"<th>{html.escape(i)}</th>" for i in table.injectates)
        body = "".join(
            f"<tr><th>{html.escape(_variances(v))}</th>"
            + "".join(f'<td class="dt" style="background:{COLOURS[m.value]}" title="{html.escape(m.value)}">{SHORT[m]}</td>' for m in mods)
            + "</tr>"
            for v, mods in table.rows
        )
        parts.append(
            f'<div class="site-table" id="site-{html.escape(table.site)}"><h3>{html.escape(table.title)} '
            f'<code>{html.escape(table.site)}</code></h3><p class="defaults">{html.escape(table.defaults)}</p>'
            f'<table class="decision"><tr><th>anatomy variance</th>{head}</tr>{body}</table>'
            + (f'<p class="omitted">{html.escape(_omitted(table))}</p>' if table.omitted else "")
            + "</div>"
        )
    fragment = f'<div class="decision-tables">{"".join(parts)}</div>'
    if not standalone:
        return fragment
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>guidance-rules decision table</title>'
        f"<style>{CSS}</style></head><body><h1>Decision table</h1>"
        "<p>Recommended modality for each site, injectate and set of anatomy variances, every other field at the "
        f"site's defaults.</p>{fragment}</body></html>\n"
    )


CSS = (
    "body{font-family:system-ui,sans-serif;margin:24px;color:#1d232a}"
    ".decision-tables{display:grid;grid-template-columns:repeat(auto-fill,minmax(520px,1fr));gap:16px}"
    ".site-table h3{font-size:14px;margin:0 0 2px}.defaults{font-size:11px;color:#555;margin:0 0 4px}"
    "table.decision{border-collapse:collapse;font-size:11px}table.decision th{text-align:left;font-weight:500;padding:1px 6px}"
    "td.dt{color:#fff;text-align:center;font-weight:600;padding:1px 6px;min-width:44px;border:1px solid #fff}"
)


def render(knowledge: KnowledgeBase, fmt: str) -> str:
    tables = decision_tables(knowledge)
    if fmt == "csv":
        return to_csv(tables)
    return to_html(tables) if fmt == "html" else to_markdown(tables)
