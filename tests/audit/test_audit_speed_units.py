"""The audit's per-case answer checks are answered from a memo (issue 22, target 3): a case gets the
conclusion of an earlier case only when both have the same chain and agree on every field the
checks read. These tests change one field the checks read and expect the case's own conclusion,
and compare memoised conclusions with ones computed afresh over real and altered cases."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from pydantic import ValidationError

from guidance_rules.audit.check import ABSENT, Checker, Reads
from guidance_rules.errors import EngineError
from guidance_rules.model import Modality
from guidance_rules.recommendation.explain import Evaluation
from guidance_rules.recommendation.recommender import Recommender
from guidance_rules.rulebase.load import default_knowledge
from guidance_rules.rulebase.space import site_space

KB = default_knowledge()
REC = Recommender(KB, cache_size=0)
SPACE = site_space(KB)


def evaluations(start: int, stop: int) -> list[Evaluation]:
    out = []
    for case in SPACE.cases(start, stop):
        try:
            out.append(REC.evaluate(REC.resolve(case).values))
        except (ValidationError, EngineError):  # a contradictory case is not what these tests are about
            continue
    return out


def altered(ev: Evaluation, **values: Any) -> Evaluation:
    return dataclasses.replace(ev, values={**ev.values, **values})


def landmark_index() -> int:
    """The first case of the site space answered landmark (with the fact the policy requires)."""
    for index, case in enumerate(SPACE.cases(0, SPACE.size)):
        try:
            ev = REC.evaluate(REC.resolve(case).values)
        except (ValidationError, EngineError):
            continue
        if ev.modality is Modality.LANDMARK and ev.values[KB.policy.landmark_requires] is True:
            return index
    raise AssertionError("the shipped rule base recommends landmark nowhere")  # pragma: no cover


LANDMARK = landmark_index()


def test_a_field_the_checks_read_is_part_of_the_memo_key() -> None:
    """Landmark without the fact the policy requires is a fault: the same chain with that fact
    false must not be answered with the conclusion of its twin that had it true."""
    checker = Checker(REC)
    (justified,) = evaluations(LANDMARK, LANDMARK + 1)
    assert checker.problems(justified) == ()
    unjustified = altered(justified, **{KB.policy.landmark_requires: False})
    assert ("landmark-unjustified", f"landmark recommended without {KB.policy.landmark_requires}") in checker.problems(unjustified)
    assert checker.problems(justified) == ()  # and the twin keeps its own


def test_memoised_conclusions_equal_fresh_ones() -> None:
    """Over consecutive cases, each also at another site and with the required fact flipped (so
    some conclusions are faults), the memo's conclusion is the one computed afresh."""
    checker, fresh = Checker(REC), Checker(REC)
    other = next(s for s in KB.sites if s != SPACE.case(LANDMARK)["site"])
    seen = set()
    for ev in evaluations(LANDMARK - 100, LANDMARK + 200):
        flipped = not ev.values[KB.policy.landmark_requires]
        for case in (ev, altered(ev, site=other), altered(ev, **{KB.policy.landmark_requires: flipped})):
            expected = fresh._problems(case, fresh.parts.reasoning(case))
            assert checker.problems(case) == expected
            seen.add(expected)
    assert len(seen) > 1  # some cases have faults, so equal conclusions are not all empty


def test_reads_records_what_was_read_including_absent_fields() -> None:
    reads = Reads({"site": "knee", "palpable": True})
    assert reads["site"] == "knee"
    assert reads.get("approach", "none") == "none"
    assert "palpable" in reads
    with pytest.raises(KeyError):
        reads["depth"]
    assert reads.read == {"site": "knee", "approach": ABSENT, "palpable": True, "depth": ABSENT}
    assert not reads.whole


def test_reads_that_see_every_field_are_marked_whole() -> None:
    for look in (list, len, dict):
        reads = Reads({"site": "knee"})
        look(reads)
        assert reads.whole
