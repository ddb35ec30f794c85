"""Plain-text rendering of a recommendation and of rules, for a person at a terminal."""

from __future__ import annotations

import json
import os
import shutil
import textwrap
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, TextIO

from pydantic import BaseModel

from guidance_rules.model import (
    Assumption,
    Citation,
    Evidence,
    Figure,
    Modality,
    Note,
    Rating,
    Ratings,
    Reason,
    Recommendation,
    RulesetInfo,
    Step,
    Summary,
)
from guidance_rules.rulebase.domain import Policy, Rule

WIDTH = 96  # for output that is not a terminal: stable, and fits a printed page


@dataclass(frozen=True)
class Style:
    """How to draw for one output: its width, and whether to use colour: on a terminal whose TERM
    is not dumb, never when NO_COLOR is set to a non-empty value (https://no-color.org: an empty
    one is ignored), and also off a terminal when FORCE_COLOR is (https://force-color.org; NO_COLOR
    wins when both are, as in Python's own colour choice)."""

    width: int = WIDTH
    color: bool = False

    @classmethod
    def detect(cls, stream: TextIO) -> Style:
        terminal = stream.isatty()
        width = max(60, min(140, shutil.get_terminal_size((WIDTH, 24)).columns - 1)) if terminal else WIDTH
        if os.environ.get("NO_COLOR"):
            return cls(width, False)
        if os.environ.get("FORCE_COLOR"):
            return cls(width, True)
        return cls(width, terminal and os.environ.get("TERM") != "dumb")

    def bold(self, text: str) -> str:
        return f"\x1b[1m{text}\x1b[0m" if self.color else text

    def mark(self, text: str, good: bool) -> str:
        return f"\x1b[{32 if good else 31}m{text}\x1b[0m" if self.color else text


PLAIN = Style()
_style = PLAIN


def wrap(text: str, indent: str, hanging: str | None = None) -> str:
    """Text wrapped to the output's width (never at a hyphen: rule ids contain them)."""
    return textwrap.fill(text, _style.width, initial_indent=indent, subsequent_indent=hanging or indent, break_on_hyphens=False)


def _cites(sources: Iterable[Citation]) -> str:
    return "; ".join(f"{c.source} ({c.locator})" for c in sources)


def value_text(value: object) -> str:
    """A case value as people write it: true/false, [a, b]."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(map(str, value)) + "]"
    return str(value)


def count(number: int, singular: str, plural: str | None = None) -> str:
    """'1 record', '2 records', '1 documentation item': a count agrees with its noun."""
    return f"{number:,} {singular if number == 1 else plural or singular + 's'}"


def mark(text: str, good: bool) -> str:
    """`text` in green or red where colour is used."""
    return _style.mark(text, good)


def use(style: Style) -> None:
    """Draw everything after this call in `style` (the command line sets it once)."""
    global _style
    _style = style


def bottom_line(rec: Recommendation) -> list[str]:
    """The answer's bottom line under the headline, in the full and the --brief answer alike
    (issue 19): the decisive reason, the site's key figure with its source, any refer caution."""
    summary = rec.summary
    lines = [wrap(f"Why: {summary.reason}", "  ", "       ")]
    if summary.figure is not None:
        source = summary.figure.source
        lines.append(wrap(f"Key figure: {summary.figure.text} ({source.source}, {source.locator})", "  ", "              "))
    lines.extend(wrap(f"REFER: {text}", "  ", "         ") for text in summary.cautions)
    return lines


def brief(rec: Recommendation) -> str:
    """A few lines that still name every rule that decided the answer."""
    lines = [f"Recommended guidance: {_style.bold(rec.modality.value.upper())}", *bottom_line(rec)]
    for modality in Modality:
        rating = rec.ratings[modality]
        lines.append(f"  {modality.value:<12} {rating.category.value.replace('_', ' '):<26} {', '.join(rating.rules)}")
    chain = " > ".join("+".join(r.rule for r in step.reasons) or step.rule for step in rec.reasoning)
    lines.append(wrap("chain: " + chain, "  ", "         "))
    if rec.assumptions:
        assumed = ", ".join(f"{a.field}={value_text(a.value)}" for a in rec.assumptions)
        lines.append(wrap(f"assumed: {assumed}", "  ", "           "))
    if rec.cautions:  # named in the brief answer too: a refer-elsewhere caution changes what happens next
        lines.append(wrap("cautions: " + ", ".join(note.rule for note in rec.cautions), "  ", "            "))
    counts = ", ".join((count(len(rec.documentation), "documentation item"), count(len(rec.questions), "question")))
    lines.append(f"  {counts} and the sources (run without --brief to read them)")
    return "\n".join(lines)


def recommendation(rec: Recommendation, title: str | None = None, inputs: str | None = None) -> str:
    lines = []
    if title:
        lines.append(title)
    lines.append(f"Recommended guidance: {_style.bold(rec.modality.value.upper())}")
    lines.extend(bottom_line(rec))
    lines.append("")
    lines.append("Ratings")
    for modality in Modality:
        rating = rec.ratings[modality]
        lines.append(f"  {modality.value:<12} {rating.category.value.replace('_', ' '):<26} {', '.join(rating.rules)}")
    lines.append("")
    lines.append("Reasoning")
    for number, step in enumerate(rec.reasoning, 1):
        lines.append(wrap(f"{number:>2}. [{step.rule}] {step.conclusion}", "  ", "      "))
        facts = ", ".join(f"{k}={value_text(v)}" for k, v in step.facts.items())
        if facts:
            lines.append(wrap(f"facts: {facts}", "      "))
        if step.reasons:  # one step for several reasons: each with its own sources
            for reason in step.reasons:
                lines.append(wrap(f"- [{reason.rule}] {reason.conclusion}", "      ", "        "))
                lines.append(wrap(f"sources: {_cites(reason.sources)}", "        "))
        else:
            lines.append(wrap(f"sources: {_cites(step.sources)}", "      "))
    if rec.assumptions:
        lines.append("")
        lines.append("Assumptions (values the case did not give)")
        for item in rec.assumptions:
            lines.append(f"  {item.field} = {value_text(item.value)}  (from {item.origin})")
    if inputs:  # the inputs that matter (whatif_text.inputs_section), beside the assumptions
        lines.extend(["", inputs])
    for heading, notes in (
        ("Documentation", rec.documentation),
        ("Cautions", rec.cautions),
        ("Questions the patient or a reviewer may ask (have the answers ready)", rec.questions),
    ):
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
            lines.append(wrap(f"- {e.measure}: {figures} [{e.source.source}, {e.source.locator}]", "  ", "    "))
    lines.append("")
    lines.append(f"Rule base {rec.ruleset.version} ({rec.ruleset.digest[:19]})")
    return "\n".join(lines)


def _notes(heading: str, notes: Iterable[Note]) -> list[str]:
    notes = list(notes)
    if not notes:
        return []
    lines = ["", heading]
    for note in notes:
        lines.append(wrap(f"- {note.text}", "  ", "    "))  # continuation lines under the text, not the dash
        lines.append(wrap(f"[{note.rule}; {_cites(note.sources)}]", "    "))
    return lines


def conclusion_of(rule: Rule) -> str:
    if rule.kind == "derive":
        return f"derive {rule.derive}"
    if rule.kind == "rate":
        return "rate " + ", ".join(f"{m.value}: {c.value}" for m, c in rule.rate.items())
    return f"{rule.kind}: {rule.text}"


def rule_line(rule: Rule) -> str:
    pad = " " * 29
    return "\n".join(
        (
            wrap(f"{rule.id:<28} {rule.title}", "", pad),
            wrap(conclusion_of(rule), pad),
            wrap(f"sources: {_cites(rule.sources)}", pad, pad + "  "),
        )
    )


def rule_full(rule: Rule) -> str:
    when = ", ".join(t.describe() for t in rule.tests) or "always"
    lines = [
        f"{rule.id} (version {rule.version}, {rule.status}, {rule.file})",
        wrap(f"title:      {rule.title}", "  ", " " * 14),
    ]
    lines += [wrap(f"when:       {when}", "  ", " " * 14), wrap(f"then:       {conclusion_of(rule)}", "  ", " " * 14)]
    if rule.overrides:
        lines.append(f"  overrides:  {', '.join(rule.overrides)}")
    lines.append(wrap(f"conclusion: {rule.conclusion}", "  ", " " * 14))
    lines.append(wrap(f"rationale:  {rule.rationale}", "  ", " " * 14))
    lines.append("  sources:")
    lines.extend(f"    - {c.source}: {c.locator}" for c in rule.sources)
    lines.append(f"  examples:   {len(rule.fires)} that fire it, {len(rule.silent)} that do not")
    return "\n".join(lines)


def policy_full(policy: Policy) -> str:
    """The selection policy, shown like a rule: it is the last step of every chain."""
    first = ", ".join(m.value for m in policy.preference)
    hang = " " * 14
    lines = [
        f"{policy.id} (version {policy.version}, policy.yaml)",
        wrap(f"title:      {policy.title}", "  ", hang),
        "  when:       always, after every rating rule has fired",
        wrap(
            f"then:       recommend the first of {first} rated usually appropriate; landmark only with {policy.landmark_requires}",
            "  ",
            hang,
        ),
        wrap(f"conclusion: {policy.conclusion}", "  ", hang),
        wrap(f"rationale:  {policy.rationale}", "  ", hang),
    ]
    lines.append("  sources:")
    lines.extend(f"    - {c.source}: {c.locator}" for c in policy.sources)
    return "\n".join(lines)


def rule_json(rule: Rule) -> dict[str, Any]:
    return {
        "id": rule.id,
        "title": rule.title,
        "version": rule.version,
        "status": rule.status,
        "file": rule.file,
        "when": [t.describe() for t in rule.tests],
        "then": conclusion_of(rule),
        "overrides": list(rule.overrides),
        "conclusion": rule.conclusion,
        "rationale": rule.rationale,
        "sources": [c.model_dump() for c in rule.sources],
        "examples": {"fires": list(rule.fires), "silent": list(rule.silent)},
    }


def policy_json(policy: Policy) -> dict[str, Any]:
    return {
        "id": policy.id,
        "title": policy.title,
        "version": policy.version,
        "status": "active",
        "file": "policy.yaml",
        "preference": [m.value for m in policy.preference],
        "landmark_requires": policy.landmark_requires,
        "conclusion": policy.conclusion,
        "rationale": policy.rationale,
        "sources": [c.model_dump() for c in policy.sources],
    }


# The answer's models, each written as pydantic writes it: every field, in the order declared,
# under its own name (none has an alias, a serializer or a computed field).
_WRITTEN = frozenset({Recommendation, Summary, Figure, Citation, Ratings, Rating, Step, Reason, Assumption, Note, Evidence, RulesetInfo})


_UNWRITTEN = object()  # what `_plain` gives for a value it does not write itself


def json_text(rec: Recommendation) -> str:
    """`rec.model_dump_json(indent=2)`, byte for byte, without pydantic's serializer: a one-shot
    `recommend --json` spent more building that serializer (the answer's whole schema, at first
    use) than answering. Only strings, booleans, whole numbers, null, enums (their value), lists
    and mappings with text keys are written here; an answer holding anything else (a float, a key
    that is not text) is left to pydantic whole, so a value is never written differently."""
    plain = _plain(rec)
    if plain is _UNWRITTEN:
        return rec.model_dump_json(indent=2)
    return json.dumps(plain, indent=2, ensure_ascii=False)


def _plain(value: Any) -> Any:
    """The value as `json` writes it as pydantic would, or `_UNWRITTEN` if it holds anything else."""
    kind = type(value)
    if value is None or kind is str or kind is bool or kind is int:
        return value
    if isinstance(value, Enum):
        return value.value if type(value.value) is str else _UNWRITTEN
    if kind is tuple or kind is list:
        items = [_plain(item) for item in value]
        return _UNWRITTEN if any(item is _UNWRITTEN for item in items) else items
    if kind in _WRITTEN:
        pairs = [(name, getattr(value, name)) for name in kind.model_fields]
    elif isinstance(value, Mapping) and not isinstance(value, BaseModel) and all(type(key) is str for key in value):
        pairs = list(value.items())
    else:
        return _UNWRITTEN
    fields = {name: _plain(item) for name, item in pairs}
    return _UNWRITTEN if any(item is _UNWRITTEN for item in fields.values()) else fields
