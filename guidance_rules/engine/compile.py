"""Compiling the rule base into one durable-rules ruleset, in strata.

Derived facts are negated in conditions (``landmark_unreliable: false``), which is only
sound once every rule that could derive them has had its chance. So rules are placed in
strata: a derivation rule sits one stratum above the facts it reads; rating rules follow
all derivations; output rules (documentation, cautions, questions) come last, after the
modality is chosen. Each stratum is asserted into the engine as one fact tagged with its
stratum number, and every rule matches only facts of its own stratum.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from guidance_rules.rulebase.conditions import Test
from guidance_rules.rulebase.load import KnowledgeBase, Rule, derivation_levels

STRATUM_KEY = "stratum"


@dataclass(frozen=True)
class Stratum:
    number: int
    rules: tuple[Rule, ...]
    keys: tuple[str, ...]  # the flattened snapshot keys its rules read
    produces: tuple[str, ...]  # derived facts completed by this stratum


@dataclass(frozen=True)
class Compiled:
    knowledge: KnowledgeBase
    derive: tuple[Stratum, ...]
    rate: Stratum
    output: Stratum
    ruleset_json: str
    underived: tuple[str, ...]  # declared facts no active rule derives: false from the start

    @property
    def strata(self) -> tuple[Stratum, ...]:
        return (*self.derive, self.rate, self.output)


def list_key(field: str, value: Any) -> str:
    """Snapshot key for "list field includes value" (the engine matches scalars only)."""
    return f"{field}__{value}"


def keys_for(test: Test) -> tuple[str, ...]:
    if test.is_list:
        return tuple(list_key(test.field, v) for v in sorted(test.values))
    return (test.field,)


@functools.lru_cache(maxsize=256)
def _plan(keys: tuple[str, ...]) -> tuple[tuple[str, str, str | None], ...]:
    """For each key: (key, field, list item), the item None for a scalar field."""
    plan: list[tuple[str, str, str | None]] = []
    for key in keys:
        field, _, item = key.partition("__")
        plan.append((key, field, item or None))
    return tuple(plan)


def flatten(values: Mapping[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    """Project resolved values onto the keys one stratum reads, splitting list fields into flags."""
    return {key: values[field] if item is None else item in values[field] for key, field, item in _plan(keys)}


def _expression(test: Test) -> dict[str, Any]:
    """One test as a durable-rules JSON expression."""
    parts: list[dict[str, Any]]
    if test.is_list:
        parts = [{list_key(test.field, v): not test.negated} for v in sorted(test.values)]
        return parts[0] if len(parts) == 1 else {("$and" if test.negated else "$or"): parts}
    ordered = sorted(test.values, key=str)
    if test.negated:
        parts = [{"$neq": {test.field: v}} for v in ordered]
        return parts[0] if len(parts) == 1 else {"$and": parts}
    parts = [{test.field: v} for v in ordered]
    return parts[0] if len(parts) == 1 else {"$or": parts}


def _stratum(number: int, rules: list[Rule]) -> Stratum:
    keys = sorted({key for rule in rules for test in rule.tests for key in keys_for(test)})
    produces = sorted({rule.derive for rule in rules if rule.derive})
    return Stratum(number, tuple(rules), tuple(keys), tuple(produces))


def compile_rules(knowledge: KnowledgeBase) -> Compiled:
    levels = derivation_levels(knowledge.rules, knowledge.facts)
    top = max(levels.values(), default=0)
    derive = tuple(_stratum(n, [r for r in knowledge.rules if levels.get(r.id) == n]) for n in range(1, top + 1))
    rate = _stratum(top + 1, [r for r in knowledge.rules if r.kind == "rate"])
    output = _stratum(top + 2, [r for r in knowledge.rules if r.is_output])
    underived = tuple(sorted(set(knowledge.facts) - {f for s in derive for f in s.produces}))
    ruleset: dict[str, Any] = {}
    for stratum in (*derive, rate, output):
        for rule in stratum.rules:
            clauses = [{STRATUM_KEY: stratum.number}, *(_expression(t) for t in rule.tests)]
            ruleset[rule.id] = {"all": [{"m": {"$and": clauses} if len(clauses) > 1 else clauses[0]}]}
    return Compiled(knowledge, derive, rate, output, json.dumps(ruleset, sort_keys=True), underived)
