"""The clinical invariants as properties; hypothesis hunts for counterexamples and shrinks them.

The audit proves the same invariants exhaustively over the finite space; these tests state them
over the public API (including equipment and mixed site/explicit cases the audit does not vary).
"""

from __future__ import annotations

import random
from typing import Any

from hypothesis import assume, find, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from guidance_rules import Modality, Recommender
from guidance_rules.rulebase.conditions import CASE_FIELDS
from guidance_rules.rulebase.load import default_knowledge, load
from guidance_rules.rulebase.space import escalations, free_space, site_space
from tests.conftest import find_rule

KB = default_knowledge()
SHIPPED = Recommender(KB, cache_size=0)
FLAGS = ("palpable", "near_neurovascular", "precise_plane", "compartment_specific", "bone_obscures_path", "contrast_confirmation")


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


ESCALATIONS = escalations(free_space()) + [s for s in escalations(site_space(KB)) if s not in escalations(free_space())]
# Draw the kind of escalation first, so the 32 variance steps do not crowd out the others.
STEPS = st.sampled_from(sorted({s[0] for s in ESCALATIONS})).flatmap(lambda f: st.sampled_from([s for s in ESCALATIONS if s[0] == f]))


@st.composite
def explicit_cases(draw: st.DrawFn) -> dict[str, Any]:
    """Cases with every escalatable field given, so an escalation changes exactly one value."""
    case = draw(cases())
    case.setdefault("anatomy_variance", [])
    for flag in ("near_neurovascular", "precise_plane", "compartment_specific"):
        case.setdefault(flag, False)
    if "site" not in case:
        case.setdefault("depth", "superficial")
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
