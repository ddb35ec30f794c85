"""The clinical invariants as properties; hypothesis hunts for counterexamples and shrinks them.

The audit proves the same invariants exhaustively over the finite spaces; these tests state them
over the public API (including equipment and mixed site/explicit cases the audit does not vary).
The clinical invariants and the monotone-safety escalations are drawn from rules/invariants.yaml.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import assume, find, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from guidance_rules import Modality, Recommender
from guidance_rules.audit.invariants import Invariant, answer_of, load_invariants
from guidance_rules.rulebase import conditions
from guidance_rules.rulebase.conditions import CASE_FIELDS
from guidance_rules.rulebase.load import default_knowledge, load
from guidance_rules.rulebase.space import VARIANCE_SETS, approach_space
from tests.conftest import find_rule

KB = default_knowledge()
SHIPPED = Recommender(KB, cache_size=0)
INVARIANTS = load_invariants(KB)
APPROACH_SITES = approach_space(KB).choices[0]  # the sites whose record accepts a named approach
FLAGS = conditions.BOOL_FIELDS


def values(field: str) -> st.SearchStrategy[Any]:
    spec = CASE_FIELDS[field]
    if spec.is_list:
        return st.lists(st.sampled_from(spec.values), unique=True, max_size=len(spec.values))
    return st.sampled_from(spec.values)


@st.composite
def cases(draw: st.DrawFn) -> dict[str, Any]:
    """Any case the contract allows: with or without a site, any subset of fields given."""
    case: dict[str, Any] = {"injectate": draw(values("injectate"))}
    if draw(st.booleans()):
        case["site"] = draw(st.sampled_from(list(KB.sites)))
    else:
        case.update({f: draw(values(f)) for f in ("region", "depth", "tissue")})
    for field in ("target_size", "anatomy_variance", "available_modalities", *FLAGS):
        if draw(st.booleans()):
            case[field] = draw(values(field))
    if case.get("site") in APPROACH_SITES and draw(st.booleans()):
        case["approach"] = draw(values("approach"))
    return case


def recommend_or_skip(recommender: Recommender, case: dict[str, Any]) -> Any:
    try:
        return recommender.recommend(case)
    except ValidationError:
        assume(False)  # a contradiction: rejected, as it must be


@given(cases())
def test_totality_and_chosen_is_usually_appropriate(case: dict[str, Any]) -> None:
    rec = recommend_or_skip(SHIPPED, case)
    assert rec.reasoning and all(step.sources for step in rec.reasoning)
    assert {m: rec.ratings[m].rules != () for m in Modality} == dict.fromkeys(Modality, True)
    assert rec.ratings[rec.modality].category.value == "usually_appropriate"


@given(cases())
def test_landmark_only_when_positively_justified(case: dict[str, Any]) -> None:
    rec = recommend_or_skip(SHIPPED, case)
    ev = SHIPPED.evaluate(SHIPPED.resolve(case).values)
    if rec.modality is Modality.LANDMARK:
        assert ev.values[KB.policy.landmark_requires] is True


@given(cases(), st.sampled_from([[], ["ultrasound"], ["fluoroscopy"], ["fluoroscopy", "ultrasound"]]))
def test_equipment_never_changes_the_modality(case: dict[str, Any], available: list[str]) -> None:
    rec = recommend_or_skip(SHIPPED, case)
    other = SHIPPED.recommend({**case, "available_modalities": available})
    assert other.modality == rec.modality and other.ratings == rec.ratings and other.reasoning == rec.reasoning


@given(st.lists(cases(), min_size=2, max_size=12), st.randoms(use_true_random=False))
def test_determinism_in_any_order(batch: list[dict[str, Any]], rng: random.Random) -> None:
    first = Recommender(KB, cache_size=0)
    second = Recommender(KB, cache_size=0)

    def answers(recommender: Recommender, order: list[int]) -> dict[int, str]:
        out = {}
        for i in order:
            try:
                out[i] = recommender.recommend_json(batch[i])
            except ValidationError as error:
                out[i] = f"invalid: {error.error_count()}"
        return out

    order = list(range(len(batch)))
    shuffled = order[:]
    rng.shuffle(shuffled)
    assert answers(first, order) == answers(second, shuffled)


def escalate(case: dict[str, Any], step: tuple[str, Any, Any]) -> dict[str, Any] | None:
    field, low, high = step
    current = case.get(field)
    if field == "anatomy_variance":
        return {**case, field: list(high)} if tuple(sorted(current or [])) == low else None
    return {**case, field: high} if current == low else None


ESCALATIONS = [(e.field, low, high) for e in INVARIANTS.escalations for low, high in e.steps]
# Draw the kind of escalation first, so the 32 variance steps do not crowd out the others.
STEPS = st.sampled_from(sorted({s[0] for s in ESCALATIONS})).flatmap(lambda f: st.sampled_from([s for s in ESCALATIONS if s[0] == f]))


@st.composite
def explicit_cases(draw: st.DrawFn) -> dict[str, Any]:
    """Cases with every escalatable field given (its resolved value), so an escalation changes
    exactly one value."""
    case = draw(cases())
    try:
        resolved = SHIPPED.resolve(case).values
    except ValidationError:
        assume(False)
    for field in {step[0] for step in ESCALATIONS}:
        value = resolved[field]
        case.setdefault(field, list(value) if isinstance(value, tuple) else value)
    return case


def monotone_violation(recommender: Recommender, case: dict[str, Any], step: tuple[str, Any, Any]) -> bool:
    """True if `step` turns an imaging recommendation into landmark."""
    higher = escalate(case, step)
    if higher is None:
        return False
    try:
        before, after = recommender.recommend(case), recommender.recommend(higher)
    except ValidationError:
        return False
    return before.modality is not Modality.LANDMARK and after.modality is Modality.LANDMARK


@given(explicit_cases(), STEPS)
def test_monotone_safety(case: dict[str, Any], step: tuple[str, Any, Any]) -> None:
    assert not monotone_violation(SHIPPED, case, step)


def test_hypothesis_finds_a_planted_monotonicity_violation(rule_copy: Any) -> None:
    folder = rule_copy("landmark.yaml", lambda d: find_rule(d, "LU-NEUROVASCULAR")["when"].update(near_neurovascular=False))
    planted = Recommender(load(folder), cache_size=0)
    example = find(
        st.tuples(explicit_cases(), STEPS),
        lambda pair: monotone_violation(planted, *pair),
        settings=settings(max_examples=5000, database=None, derandomize=True),
    )
    case, step = example
    assert step == ("near_neurovascular", False, True)
    assert monotone_violation(planted, case, step)
    assert not monotone_violation(SHIPPED, case, step)  # the shipped rule base has no such violation


@given(st.lists(cases(), min_size=1, max_size=40))
def test_batch_evaluation_equals_one_by_one(batch: list[dict[str, Any]]) -> None:
    """Cases sharing one engine session never influence each other."""
    resolved = []
    for case in batch:
        try:
            resolved.append(SHIPPED.resolve(case).values)
        except ValidationError:
            continue
    together = Recommender(KB, cache_size=0).evaluate_many(resolved)
    alone = Recommender(KB, cache_size=0)
    for values, result in zip(resolved, together, strict=True):
        single = alone.evaluate(values)
        assert not isinstance(result, Exception)
        assert (result.fired, result.modality, result.ratings) == (single.fired, single.modality, single.ratings)


def _satisfying(test: conditions.Test) -> list[Any]:
    """The values of one case field for which a `when` test holds (list fields: value sets)."""
    spec = CASE_FIELDS[test.field]
    options = VARIANCE_SETS if test.field == "anatomy_variance" else ((),) if spec.is_list else spec.values
    return [list(v) if isinstance(v, tuple) else v for v in options if test.holds({test.field: v})]


@st.composite
def covering(draw: st.DrawFn, invariant: Invariant) -> dict[str, Any]:
    """A case steered toward the invariant's `when`: each test on a case field or the site is
    made to hold (tests on derived facts or the modality are left to chance)."""
    case = draw(cases())
    fields = {t.field for t in invariant.tests}
    if fields & set(KB.identity_fields) and "site" in case:
        del case["site"]
        case.update({f: draw(values(f)) for f in ("region", "depth", "tissue")})
    for test in invariant.tests:
        if test.field == "site":
            options = [s for s in KB.sites if test.holds({"site": s})]
            if options:
                for f in ("region", "tissue"):
                    case.pop(f, None)
                case["site"] = draw(st.sampled_from(options))
        elif test.field in CASE_FIELDS and test.field != "available_modalities":
            options = _satisfying(test)
            if options:
                case[test.field] = draw(st.sampled_from(options))
    if "approach" in fields and APPROACH_SITES:
        for f in ("region", "depth", "tissue"):
            case.pop(f, None)
        case["site"] = draw(st.sampled_from(APPROACH_SITES))
    return case


@pytest.mark.parametrize("invariant", INVARIANTS.invariants, ids=[i.id for i in INVARIANTS.invariants])
@given(data=st.data())
def test_clinical_invariant(invariant: Invariant, data: st.DataObject) -> None:
    """Every invariant in rules/invariants.yaml holds for every case it covers."""
    case = data.draw(covering(invariant))
    try:
        resolved = SHIPPED.resolve(case).values
    except ValidationError:
        assume(False)
    evaluation = SHIPPED.evaluate(resolved)
    if invariant.applies(evaluation.values):
        assert invariant.breach(answer_of(evaluation)) is None, (invariant.statement, case)


def test_every_invariant_is_exercised_by_the_steered_cases() -> None:
    """The steering works: each invariant's `when` holds for some drawn case (else the test above is vacuous)."""
    for invariant in INVARIANTS.invariants:
        example = find(
            covering(invariant),
            lambda case, inv=invariant: _covers(inv, case),  # type: ignore[misc]
            settings=settings(max_examples=2000, database=None, derandomize=True),
        )
        assert _covers(invariant, example)


def _covers(invariant: Invariant, case: dict[str, Any]) -> bool:
    try:
        return invariant.applies(SHIPPED.evaluate(SHIPPED.resolve(case).values).values)
    except ValidationError:
        return False


def test_hypothesis_finds_a_planted_invariant_violation(rule_copy: Any) -> None:
    """Without the contrast condition on LM-SUITABLE (and IMG-CONTRAST retired), a knee with a
    contrast request gets landmark again: the data-driven property finds it."""

    def undo_finding_1(data: dict[str, Any]) -> None:
        find_rule(data, "LM-SUITABLE")["when"].pop("contrast_confirmation")

    rule_copy("landmark.yaml", undo_finding_1)
    folder = rule_copy("imaging.yaml", lambda d: find_rule(d, "IMG-CONTRAST").update(status="retired"))
    planted_kb = load(folder)
    planted = Recommender(planted_kb, cache_size=0)
    (invariant,) = [i for i in load_invariants(planted_kb).invariants if i.id == "INV-CONTRAST-NOT-LANDMARK"]

    def broken(case: dict[str, Any]) -> bool:
        try:
            evaluation = planted.evaluate(planted.resolve(case).values)
        except ValidationError:
            return False
        return invariant.applies(evaluation.values) and invariant.breach(answer_of(evaluation)) is not None

    example = find(covering(invariant), broken, settings=settings(max_examples=5000, database=None, derandomize=True))
    assert example["contrast_confirmation"] is True
    assert planted.recommend(example).modality is Modality.LANDMARK
    assert SHIPPED.recommend(example).modality is not Modality.LANDMARK
