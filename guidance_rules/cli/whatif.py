"""What-if explanations as text for a person at a terminal, and the `what-if` command."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import guidance_rules.cli.exits as exits
from guidance_rules.cli.case import answer, case_data
from guidance_rules.cli.render import value_text, wrap
from guidance_rules.model import Case
from guidance_rules.recommendation.recommender import Recommender
from guidance_rules.recommendation.whatif import AssumedInput, Change, Outcome, WhatIf, what_if
from guidance_rules.rulebase.domain import KnowledgeBase

SHOWN = 5  # routes shown per modality; --json lists every one


def _or(values: Sequence[object]) -> str:
    return f" (or {', '.join(value_text(v) for v in values)})" if values else ""


def change_text(change: Change) -> str:
    """`depth superficial → intermediate`, `add obesity`, `remove effusion`."""
    if change.item is not None:
        verb = "add" if change.after else "remove"
        return f"{verb} {change.field} {change.item}{_or(change.or_instead)}"
    return f"{change.field} {value_text(change.before)} → {value_text(change.after)}{_or(change.or_instead)}"


def changes_text(changes: Iterable[Change]) -> str:
    return "; ".join(change_text(c) for c in changes)


def _otherwise(outcome: Outcome) -> str:
    """One field's other value, as a clinician would say it: `intermediate`, `with obesity`."""
    parts = []
    for change in outcome.changes:
        if change.item is not None:
            parts.append(f"{'with' if change.after else 'without'} {change.item}{_or(change.or_instead)}")
        else:
            parts.append(f"{value_text(change.after)}{_or(change.or_instead)}")
    return f"if {' and '.join(parts)} → {outcome.modality.value}"


def _minimal(outcomes: Iterable[Outcome]) -> list[Outcome]:
    """Outcomes no smaller outcome with the same modality already explains."""
    kept: list[Outcome] = []
    for outcome in sorted(outcomes, key=lambda o: len(o.changes)):
        if not any(k.modality is outcome.modality and set(k.changes) <= set(outcome.changes) for k in kept):
            kept.append(outcome)
    return kept


def inputs_section(items: Sequence[AssumedInput]) -> str:
    """The short section for `recommend`: the assumed values the answer rests on."""
    lines = ["Inputs that matter (assumed values the answer rests on: confirm them)"]
    mattering = [item for item in items if item.matters]
    for item in mattering:
        otherwise = "; ".join(_otherwise(o) for o in _minimal(item.otherwise))
        lines.append(wrap(f"{item.field} = {value_text(item.value)} (from {item.origin}): {otherwise}", "  ", "      "))
    if not mattering:
        lines.append("  none: no assumed value, if otherwise, would change the recommended modality")
    else:
        rest = [item.field for item in items if not item.matters]
        if rest:
            lines.append(wrap(f"(no other assumed value changes the modality: {', '.join(rest)})", "  ", "   "))
    return "\n".join(lines)


def format_what_if(result: WhatIf) -> str:
    bound = "any number of" if result.max_changes is None else f"up to {result.max_changes}"
    lines = [
        f"Recommended guidance: {result.modality.value.upper()}",
        "",
        wrap(
            f"What would make another modality the recommendation: every smallest set of changes ({bound} "
            f"changes to {', '.join(result.changeable)}), found exactly by evaluating "
            f"{result.cases_evaluated:,} neighbouring cases through the rule engine.",
            "",
            "",
        ),
    ]
    for possible in result.also_possible:  # the evidence-based route: no change to the case needed
        lines.append("")
        lines.append(f"{possible.modality.value.upper()}: possible as the case stands ({', '.join(possible.rules)})")
        lines.append(wrap(possible.reason, "  ", "  "))
    for alt in result.alternatives:
        lines.append("")
        if not alt.reachable:
            why = (
                "no change of the case's clinical fields makes it the recommendation"
                if result.exhaustive
                else f"no set of {bound} changes makes it the recommendation"
            )
            lines.append(f"{alt.modality.value.upper()}: {why}")
            continue
        n = alt.changes_needed
        ways = len(alt.routes)
        lines.append(f"{alt.modality.value.upper()}: {n} change{'s' if n != 1 else ''}, {ways} way{'s' if ways != 1 else ''}")
        for route in alt.routes[:SHOWN]:
            lines.append(wrap(f"- {changes_text(route.changes)}", "  ", "    "))
            if route.steps_removed:
                lines.append(wrap(f"no longer: {', '.join(route.steps_removed)}", "      ", "                 "))
            if route.steps_added:
                lines.append(wrap(f"newly:     {', '.join(route.steps_added)}", "      ", "                 "))
        if len(alt.routes) > SHOWN:
            lines.append(f"  … and {len(alt.routes) - SHOWN} more (--json lists every one)")
    lines.append("")
    lines.append(inputs_section(result.inputs_that_matter))
    return "\n".join(lines)


def run(args: argparse.Namespace, knowledge: KnowledgeBase) -> int:
    """`guidance-rules what-if`: invalid input exits 2 with the field named, before any search."""
    recommender = Recommender(knowledge)
    data = case_data(args)
    answer(recommender, data)
    return run_what_if_command(args, recommender, data)


def run_what_if_command(args: argparse.Namespace, recommender: Recommender, case: Case | Mapping[str, Any]) -> int:
    bound = None if args.exhaustive else args.max_changes
    result = what_if(case, recommender, max_changes=bound)
    print(json.dumps(result.model_dump(mode="json"), indent=2) if args.json else format_what_if(result))
    return exits.OK
