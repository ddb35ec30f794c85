"""Exact what-if explanations for one case, and the assumed inputs its answer rests on.

For every other modality: the smallest sets of changes to the case's clinical fields that make
it the recommendation, and the reasoning steps that would change. Found exactly: neighbours of
the case are enumerated by increasing number of changes over the finite field domains, each
candidate is evaluated through the same engine and rule base (in blocks, as the audit does),
and the search for a modality stops at the first size that reaches it. A modality no change
reaches is reported as unreachable only after the whole neighbourhood has been evaluated.

The search is bounded by `max_changes` (default 3): beyond it the neighbourhood grows to tens of
thousands of cases (seconds), and a route of more changes describes another patient, not this
one. Within the bound the answer is still exact: a modality listed as not reached needs more
changes than the bound (`exhaustive` tells whether the bound covered every neighbour, in which
case it is unreachable). `max_changes=None` searches without a bound.

What may change: every case field except `available_modalities` (it never changes the answer)
and, when the case names a site, the site's identity fields (a knee is a peripheral joint) and
the fields its anatomy fixes (`fixed` in sites.yaml: a hip is deep, an A1 pulley is small). A
route changes only what can differ for this patient or procedure. Where the rules already rate
another modality "may be appropriate" for this very case (at the A1 pulley, landmark, because
trials found equal outcomes), no change is needed to choose it: `also_possible` says so, with
the rule and the site's figure.

Values are enumerated by class: two values of a field that every condition of the derivation
and rating rules and every constraint treats alike (`injectate: prp` and `corticosteroid` when
only `cell_based` is ever tested) give the same chain and modality whatever the other fields
are, so one stands for both and the result names the other as `or_instead`. For the list field
`anatomy_variance` each item is a change of its own: adding one counts 1, removing k counts k.
The classes are read from the conditions' value sets; the engine still evaluates every case.
"""

from __future__ import annotations

import itertools
import threading
import weakref
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict

from guidance_rules.errors import CaseError, EngineError
from guidance_rules.model import Case, Modality
from guidance_rules.recommendation.recommender import Recommender, default_recommender
from guidance_rules.rulebase.conditions import CASE_FIELDS, EQUIPMENT_FIELD, Test
from guidance_rules.rulebase.resolve import Resolution, resolve

BLOCK = 512  # candidates per engine session
MAX_CHANGES = 3  # default bound on the size of a route
MEMO_LIMIT = 200_000  # evaluated candidates kept per recommender; cleared when full

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class Change(BaseModel):
    """One change to one field. For `anatomy_variance`, one item added (before false, after
    true) or removed; `or_instead` lists other values (or items) with exactly the same effect."""

    model_config = _FROZEN
    field: str
    before: Any
    after: Any
    item: str | None = None
    or_instead: tuple[Any, ...] = ()


class Route(BaseModel):
    """A smallest set of changes that makes a modality the recommendation, and how the
    reasoning chain (derivation and rating rules) would differ."""

    model_config = _FROZEN
    changes: tuple[Change, ...]
    steps_removed: tuple[str, ...]
    steps_added: tuple[str, ...]


class Alternative(BaseModel):
    """Another modality: every smallest route to it, or none when no change within the
    search's bound reaches it."""

    model_config = _FROZEN
    modality: Modality
    reachable: bool
    changes_needed: int | None
    routes: tuple[Route, ...]


class Outcome(BaseModel):
    model_config = _FROZEN
    changes: tuple[Change, ...]
    modality: Modality


class AssumedInput(BaseModel):
    """A value the case did not give, and every other value of it that changes the answer."""

    model_config = _FROZEN
    field: str
    value: Any
    origin: str
    otherwise: tuple[Outcome, ...]

    @property
    def matters(self) -> bool:
        return bool(self.otherwise)


class Possible(BaseModel):
    """Another modality the rules rate may be appropriate for this case as it stands: the
    evidence-based route, needing no change to the case."""

    model_config = _FROZEN
    modality: Modality
    rules: tuple[str, ...]
    reason: str


class WhatIf(BaseModel):
    """The what-if explanation of one case (JSON: `model_dump(mode="json")`)."""

    model_config = _FROZEN
    modality: Modality
    also_possible: tuple[Possible, ...] = ()
    changeable: tuple[str, ...]
    max_changes: int | None
    exhaustive: bool  # the bound covered every neighbour: a modality not reached is unreachable
    alternatives: tuple[Alternative, ...]
    inputs_that_matter: tuple[AssumedInput, ...]
    cases_evaluated: int


# ---- the neighbourhood -------------------------------------------------------------------


@dataclass(frozen=True)
class _Option:
    cost: int
    changes: tuple[Change, ...]
    field: str
    value: Any  # the new value of the field (list fields: items to add, or items to remove)
    remove: bool = False


@dataclass(frozen=True)
class _Dim:
    field: str
    options: tuple[_Option, ...]


def _classes(values: tuple[Any, ...], tests: list[Test]) -> list[tuple[Any, ...]]:
    """Values grouped by how every test treats them, in domain order."""
    groups: dict[tuple[bool, ...], list[Any]] = {}
    for value in values:
        groups.setdefault(tuple(value in t.values for t in tests), []).append(value)
    return [tuple(g) for g in groups.values()]


def _tests(rec: Recommender) -> dict[str, list[Test]]:
    """Every test on a case field that can bear on the chain, the modality or validity."""
    compiled = rec.compiled
    rules = [r for stratum in (*compiled.derive, compiled.rate) for r in stratum.rules]
    out: dict[str, list[Test]] = {}
    for tests in [r.tests for r in rules] + [c.tests for c in rec.knowledge.constraints]:
        for test in tests:
            if test.field in CASE_FIELDS:
                out.setdefault(test.field, []).append(test)
    return out


def _fixed(rec: Recommender, values: Mapping[str, Any]) -> set[str]:
    """Fields no route may change: the site's identity and what its anatomy fixes."""
    site = rec.knowledge.sites.get(values["site"])
    return {*rec.knowledge.identity_fields, *site.fixed} if site is not None else set()


def _dims(rec: Recommender, values: Mapping[str, Any]) -> list[_Dim]:
    tests = _tests(rec)
    fixed = _fixed(rec, values)
    dims: list[_Dim] = []
    for name, spec in CASE_FIELDS.items():
        if name == EQUIPMENT_FIELD or name in fixed or name not in tests:
            continue
        current = values[name]
        if not spec.is_list:
            options = []
            for group in _classes(spec.values, tests[name]):
                if current in group:
                    continue
                change = Change(field=name, before=current, after=group[0], or_instead=group[1:])
                options.append(_Option(1, (change,), name, group[0]))
            if options:
                dims.append(_Dim(name, tuple(options)))
            continue
        for group in _classes(spec.values, tests[name]):
            if not any(item in t.values for t in tests[name] for item in group):
                continue  # no condition reads these items
            present = tuple(item for item in group if item in current)
            if present:
                changes = tuple(Change(field=name, before=True, after=False, item=item) for item in present)
                option = _Option(len(present), changes, name, present, remove=True)
            else:
                change = Change(field=name, before=False, after=True, item=group[0], or_instead=group[1:])
                option = _Option(1, (change,), name, (group[0],))
            dims.append(_Dim(f"{name}:{group[0]}", (option,)))
    return dims


def _combos(dims: list[_Dim], cost: int, start: int = 0) -> Iterator[tuple[_Option, ...]]:
    """Every choice of options on distinct dimensions whose costs add up to exactly `cost`."""
    if cost == 0:
        yield ()
        return
    for i in range(start, len(dims)):
        for option in dims[i].options:
            if option.cost <= cost:
                for rest in _combos(dims, cost - option.cost, i + 1):
                    yield (option, *rest)


def _apply(values: Mapping[str, Any], options: tuple[_Option, ...]) -> dict[str, Any]:
    out = dict(values)
    for option in options:
        if option.field not in CASE_FIELDS or not CASE_FIELDS[option.field].is_list:
            out[option.field] = option.value
        elif option.remove:
            out[option.field] = tuple(v for v in out[option.field] if v not in option.value)
        else:
            out[option.field] = tuple(sorted({*out[option.field], *option.value}))
    return out


# ---- evaluation through the engine ----------------------------------------------------------


@dataclass(frozen=True)
class _Result:
    modality: Modality
    chain: tuple[str, ...]


_INVALID = object()
_memos: weakref.WeakKeyDictionary[Recommender, dict[tuple[Any, ...], Any]] = weakref.WeakKeyDictionary()
_memo_lock = threading.Lock()


def _memo(rec: Recommender) -> dict[tuple[Any, ...], Any]:
    with _memo_lock:
        memo = _memos.get(rec)
        if memo is None:
            memo = _memos[rec] = {}
        return memo


class _Evaluator:
    """Evaluates candidate cases through the recommender's engine, in blocks, remembering each."""

    def __init__(self, rec: Recommender) -> None:
        self.rec = rec
        self.memo = _memo(rec)
        self.seen: set[tuple[Any, ...]] = set()

    def run(self, candidates: list[dict[str, Any]]) -> list[_Result | None]:
        """The result of each candidate: None when it is contradictory or the rule base has
        no answer for it (a gap or conflict the audit reports)."""
        keys = [tuple(c.values()) for c in candidates]
        self.seen.update(keys)
        todo: dict[tuple[Any, ...], dict[str, Any]] = {}
        for key, candidate in zip(keys, candidates, strict=True):
            if key not in self.memo and key not in todo:
                todo[key] = candidate
        pending: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
        found: dict[tuple[Any, ...], Any] = {}
        for key, candidate in todo.items():
            given = {**candidate, "site": candidate["site"] or None}
            try:
                pending.append((key, dict(resolve(given, self.rec.knowledge).values)))
            except CaseError:
                found[key] = _INVALID
        for start in range(0, len(pending), BLOCK):
            block = pending[start : start + BLOCK]
            for (key, _), ev in zip(block, self.rec.evaluate_many([v for _, v in block]), strict=True):
                found[key] = _INVALID if isinstance(ev, EngineError) else _Result(ev.modality, tuple(r.id for r in ev.chain))
        if found:
            with _memo_lock:
                if len(self.memo) + len(found) > MEMO_LIMIT:
                    self.memo.clear()
                self.memo.update(found)
        out: list[_Result | None] = []
        for key in keys:
            result = found[key] if key in found else self.memo.get(key, _INVALID)
            out.append(result if isinstance(result, _Result) else None)
        return out


def _route(base: _Result, options: tuple[_Option, ...], result: _Result) -> Route:
    changes = tuple(change for option in options for change in option.changes)
    return Route(
        changes=changes,
        steps_removed=tuple(r for r in base.chain if r not in result.chain),
        steps_added=tuple(r for r in result.chain if r not in base.chain),
    )


_Start = tuple[Recommender, Case, Resolution, "_Evaluator", dict[str, Any], _Result]


def _start(case: Case | Mapping[str, Any], recommender: Recommender | None) -> _Start:
    rec = recommender or default_recommender()
    valid = rec.validate(case)
    resolution = rec.resolve(valid)
    values = {"site": resolution.values["site"], **{f: resolution.values[f] for f in CASE_FIELDS}}
    evaluator = _Evaluator(rec)
    (base,) = evaluator.run([values])
    if base is None:
        ev = rec.evaluate(resolution.values)  # raises the rule base's EngineError
        base = _Result(ev.modality, tuple(r.id for r in ev.chain))
    return rec, valid, resolution, evaluator, values, base


def _assumed(
    rec: Recommender, resolution: Resolution, evaluator: _Evaluator, values: dict[str, Any], base: _Result
) -> tuple[AssumedInput, ...]:
    """For each assumed value: every other value of that one field (by class), evaluated."""
    dims = _dims(rec, values)
    fixed = _fixed(rec, values)
    out = []
    for field, value, origin in resolution.assumptions:
        if field == EQUIPMENT_FIELD or field in fixed:
            continue  # never changes the answer; or fixed by the site (a knee is a peripheral joint, a hip is deep)
        mine = [d for d in dims if d.field == field or d.field.startswith(f"{field}:")]
        if CASE_FIELDS[field].is_list:  # any combination of items added or removed
            choices = [combo for size in range(1, len(mine) + 1) for combo in itertools.combinations([d.options[0] for d in mine], size)]
        else:
            choices = [(option,) for d in mine for option in d.options]
        results = evaluator.run([_apply(values, combo) for combo in choices])
        if choices and all(result is None for result in results):
            continue  # no other value gives a valid case (approach at a hip): nothing to confirm
        otherwise = tuple(
            Outcome(changes=tuple(c for o in combo for c in o.changes), modality=result.modality)
            for combo, result in zip(choices, results, strict=True)
            if result is not None and result.modality is not base.modality
        )
        out.append(AssumedInput(field=field, value=value, origin=origin, otherwise=otherwise))
    return tuple(out)


def _possible(rec: Recommender, case: Case) -> tuple[Possible, ...]:
    """The evidence-based routes: modalities rated may be appropriate for the case as it is by a
    rule that quotes the site's own figure for it, each with that step as the reader sees it."""
    answer = rec.recommend(case)
    steps = {step.rule: step for step in answer.reasoning}
    kb = rec.knowledge
    site = kb.sites.get(str(rec.resolve(case).values["site"]))
    points = {p for row in site.evidence for p in row.points} if site is not None else set()
    out = []
    for modality in Modality:
        rating = answer.ratings[modality]
        if modality is answer.modality or rating.category.value != "may_be_appropriate":
            continue
        if not any(points.intersection(kb.rule(r).figures) for r in rating.rules):
            continue
        reason = " ".join(steps[r].conclusion for r in rating.rules if r in steps)
        out.append(Possible(modality=modality, rules=rating.rules, reason=reason))
    return tuple(out)


def inputs_that_matter(case: Case | Mapping[str, Any], recommender: Recommender | None = None) -> tuple[AssumedInput, ...]:
    """Every value the case did not give, each with the other values that would change the
    recommended modality (none: the answer does not rest on that assumption). Cheap: a few
    engine evaluations per assumed field."""
    rec, _, resolution, evaluator, values, base = _start(case, recommender)
    return _assumed(rec, resolution, evaluator, values, base)


def what_if(case: Case | Mapping[str, Any], recommender: Recommender | None = None, max_changes: int | None = MAX_CHANGES) -> WhatIf:
    """For every other modality, the smallest sets of changes that make it the recommendation,
    found exactly through the engine; and which assumed inputs the answer rests on.

    Routes have at most `max_changes` changes (None: no bound; may take seconds). Invalid
    input raises `pydantic.ValidationError`, as `recommend` does."""
    if max_changes is not None and max_changes < 0:
        raise ValueError(f"max_changes must be 0 or more, or None for no bound; got {max_changes}")
    rec, valid_case, resolution, evaluator, values, base = _start(case, recommender)
    dims = _dims(rec, values)
    remaining = [m for m in Modality if m is not base.modality]
    hits: dict[Modality, list[Route]] = {}
    needed: dict[Modality, int] = {}
    most = sum(max(o.cost for o in d.options) for d in dims)
    limit = most if max_changes is None else min(most, max_changes)
    size = 1
    while remaining and size <= limit:
        combos = list(_combos(dims, size))
        results = evaluator.run([_apply(values, combo) for combo in combos])
        for combo, result in zip(combos, results, strict=True):
            if result is not None and result.modality in remaining:
                hits.setdefault(result.modality, []).append(_route(base, combo, result))
        for modality in [m for m in remaining if m in hits]:
            needed[modality] = size
            remaining.remove(modality)
        size += 1
    alternatives = tuple(
        Alternative(modality=m, reachable=m in hits, changes_needed=needed.get(m), routes=tuple(hits.get(m, ())))
        for m in Modality
        if m is not base.modality
    )
    assumed = _assumed(rec, resolution, evaluator, values, base)
    # a field is changeable when some change to it alone gives a valid case (approach at a hip never does)
    singles = [(d.field.split(":")[0], _apply(values, (o,))) for d in dims for o in d.options]
    valid = {name for (name, _), result in zip(singles, evaluator.run([c for _, c in singles]), strict=True) if result is not None}
    return WhatIf(
        modality=base.modality,
        also_possible=_possible(rec, valid_case),
        changeable=tuple(name for name in dict.fromkeys(d.field.split(":")[0] for d in dims) if name in valid),
        max_changes=max_changes,
        exhaustive=limit == most,
        alternatives=alternatives,
        inputs_that_matter=assumed,
        cases_evaluated=len(evaluator.seen),
    )
