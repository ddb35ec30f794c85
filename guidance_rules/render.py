"""Plain-text rendering of a recommendation and of rules, for a person at a terminal."""

from __future__ import annotations

import textwrap
from collections.abc import Iterable

from .knowledge import Rule
from .model import Citation, Modality, Note, Recommendation

WIDTH = 96


def _wrap(text: str, indent: str, hanging: str | None = None) -> str:
    return textwrap.fill(text, WIDTH, initial_indent=indent, subsequent_indent=hanging or indent)


def _cites(sources: Iterable[Citation]) -> str:
    return "; ".join(f"{c.source} ({c.locator})" for c in sources)


def _value(value: object) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(map(str, value)) + "]"
    return str(value)


def recommendation(rec: Recommendation, title: str | None = None, inputs: str | None = None) -> str:
    lines = []
    if title:
        lines.append(title)
    lines.append(f"Recommended guidance: {rec.modality.value.upper()}")
    lines.append("")
    lines.append("Ratings")
    for modality in Modality:
        rating = rec.ratings[modality]
        lines.append(f"  {modality.value:<12} {rating.category.value.replace('_', ' '):<26} {', '.join(rating.rules)}")
    lines.append("")
    lines.append("Reasoning")
    for number, step in enumerate(rec.reasoning, 1):
        lines.append(_wrap(f"{number:>2}. [{step.rule}] {step.conclusion}", "  ", "      "))
        facts = ", ".join(f"{k}={_value(v)}" for k, v in step.facts.items())
        if facts:
            lines.append(_wrap(f"facts: {facts}", "      "))
        lines.append(_wrap(f"sources: {_cites(step.sources)}", "      "))
    if rec.assumptions:
        lines.append("")
        lines.append("Assumptions (values the case did not give)")
        for item in rec.assumptions:
            lines.append(f"  {item.field} = {_value(item.value)}  (from {item.origin})")
    if inputs:  # the inputs that matter (whatif_text.inputs_section), beside the assumptions
        lines.extend(["", inputs])
    for heading, notes in (("Documentation", rec.documentation), ("Cautions", rec.cautions), ("Questions to ask", rec.questions)):
        lines.extend(_notes(heading, notes))
    if rec.evidence:
        lines.append("")
        lines.append("Evidence for this site")
        for e in rec.evidence:
            figures = ", ".join(
                part
                for part in (
                    f"ultrasound {e.ultrasound}" if e.ultrasound else "",
                    f"landmark {e.landmark}" if e.landmark else "",
                    e.note or "",
                )
                if part
            )
            lines.append(_wrap(f"- {e.measure}: {figures} [{e.source.source}, {e.source.locator}]", "  "))
    lines.append("")
    lines.append(f"Rule base {rec.ruleset.version} ({rec.ruleset.digest[:19]})")
    return "\n".join(lines)


def _notes(heading: str, notes: Iterable[Note]) -> list[str]:
    notes = list(notes)
    if not notes:
        return []
    lines = ["", heading]
    for note in notes:
        lines.append(_wrap(f"- {note.text}", "  "))
        lines.append(_wrap(f"[{note.rule}; {_cites(note.sources)}]", "    "))
    return lines


def conclusion_of(rule: Rule) -> str:
    if rule.kind == "derive":
        return f"derive {rule.derive}"
    if rule.kind == "rate":
        return "rate " + ", ".join(f"{m.value}: {c.value}" for m, c in rule.rate.items())
    return f"{rule.kind}: {rule.text}"


def rule_line(rule: Rule) -> str:
    return f"{rule.id:<28} {rule.title}\n{'':<29}{conclusion_of(rule)}\n{'':<29}sources: {_cites(rule.sources)}"


def rule_full(rule: Rule) -> str:
    when = ", ".join(t.describe() for t in rule.tests) or "always"
    lines = [
        f"{rule.id} (version {rule.version}, {rule.status}, {rule.file})",
        f"  title:      {rule.title}",
        f"  when:       {when}",
        f"  then:       {conclusion_of(rule)}",
    ]
    if rule.overrides:
        lines.append(f"  overrides:  {', '.join(rule.overrides)}")
    lines.append(_wrap(f"conclusion: {rule.conclusion}", "  "))
    lines.append(_wrap(f"rationale:  {rule.rationale}", "  "))
    lines.append("  sources:")
    lines.extend(f"    - {c.source}: {c.locator}" for c in rule.sources)
    lines.append(f"  examples:   {len(rule.fires)} that fire it, {len(rule.silent)} that do not")
    return "\n".join(lines)
