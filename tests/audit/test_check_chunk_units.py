"""The audit's worker side run in this process (issue 24): `evaluate_chunk` on a few hundred cases
of the hip's site space, each result compared with what the recommender answers for that case
alone. Code run in the audit's worker processes is invisible to mutation testing; here it is not.
Faults are planted in the worker's own recommender (engine errors, a wrong modality, a broken
chain, a joined JSON that differs) and each must come back as the chunk's codes and problems."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from guidance_rules.audit import check
from guidance_rules.audit.check import FAILED, INVALID, MODALITIES, SAMPLE_EVERY, evaluate_chunk
from guidance_rules.audit.findings import Chunk, Seen
from guidance_rules.audit.invariants import load_invariants, weight
from guidance_rules.errors import CaseError, EngineError
from guidance_rules.model import Modality
from guidance_rules.recommendation.explain import Evaluation
from guidance_rules.recommendation.pool import RuleBase, worker_recommender
from guidance_rules.recommendation.recommender import Recommender
from guidance_rules.rulebase.load import default_knowledge, default_rules_dir
from guidance_rules.rulebase.resolve import resolve
from guidance_rules.rulebase.space import Space, as_json_case, audit_spaces

KB = default_knowledge()
REC = Recommender(KB, cache_size=0)  # the oracle: a recommender of its own, one case at a time
BASE = RuleBase(str(default_rules_dir().resolve()), KB.digest)
HIP = audit_spaces(KB, quick=True, sites=("hip",))[0]  # 6,144 cases; palpable hip cases contradict the site
INVARIANTS = load_invariants(KB).invariants
Fault = Callable[[int, Evaluation], Evaluation | EngineError]


@dataclasses.dataclass
class Expected:
    codes: bytearray
    marks: dict[str, bytearray]
    heat: Counter[tuple[Any, ...]]
    covered: Counter[str]
    samples: dict[int, str]


def expected(space: Space, start: int, stop: int, fault: Fault = lambda i, ev: ev) -> Expected:
    """What each case of [start, stop) answers on its own (through `fault`, if given)."""
    out = Expected(bytearray(), {}, Counter(), Counter(), {})
    for i in range(start, stop):
        case = space.case(i)
        try:
            values = resolve(case, KB).values
        except CaseError:
            out.codes.append(INVALID)
            continue
        ev = fault(i, REC.evaluate(values))
        if isinstance(ev, EngineError):
            out.codes.append(FAILED)
            continue
        out.codes.append(MODALITIES.index(ev.modality))
        for rid in ev.fired:
            out.marks.setdefault(rid, bytearray(stop - start))[i - start] = 1
        out.heat[(values["injectate"], values["region"], values["depth"], values["tissue"], ev.modality.value, values["site"])] += 1
        out.covered.update(inv.id for inv in INVARIANTS if inv.applies(ev.values))
        if i % SAMPLE_EVERY == 0:
            out.samples[i] = REC.recommend_json(as_json_case(case))
    return out


def assert_matches(chunk: Chunk, want: Expected) -> None:
    assert chunk.modality == want.codes
    assert chunk.marks == want.marks  # only the rules that fired in the chunk, each case's byte
    assert chunk.heat == want.heat
    assert chunk.covered == want.covered
    assert chunk.samples == want.samples


@pytest.fixture
def planted(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Fault], Recommender]]:
    """Plant `fault` in the recommender the worker side uses for the shipped rule base."""
    rec = worker_recommender(BASE)
    original = rec.evaluate_many
    monkeypatch.setattr(check, "_checkers", {})  # no verdict kept from an unplanted engine

    def plant(fault: Fault) -> Recommender:
        def evaluate_many(batch: list[Any]) -> list[Evaluation | EngineError]:
            return [ev if isinstance(ev, EngineError) else fault(HIP.index(v), ev) for v, ev in zip(batch, original(batch), strict=True)]

        monkeypatch.setattr(rec, "evaluate_many", evaluate_many)
        return rec

    yield plant
    check._checkers.clear()


def test_each_case_of_a_chunk_is_what_the_recommender_answers_alone() -> None:
    """Over 600 hip cases (more than one engine batch of valid ones, and a sampled index): the code
    of each case (INVALID where the case contradicts the site), each rule's firing, the heat map,
    the invariants covered and the sampled answers are those of the case evaluated on its own."""
    start = 2 * SAMPLE_EVERY - 400  # a valid case at 2 * SAMPLE_EVERY, not at SAMPLE_EVERY
    chunk = evaluate_chunk(BASE, HIP, start, start + 600)
    want = expected(HIP, start, start + 600)
    assert (chunk.space, chunk.start, chunk.stop) == ("sites", start, start + 600)
    assert INVALID in want.codes and len(want.codes) - want.codes.count(INVALID) > 256
    assert_matches(chunk, want)
    assert chunk.problems == {} and chunk.breaches == {}  # the shipped rule base is sound
    assert set(want.samples) == {2 * SAMPLE_EVERY} and want.covered and len(want.heat) > 1


def test_a_chunk_at_the_start_of_the_space() -> None:
    chunk = evaluate_chunk(BASE, HIP, 0, 40)
    want = expected(HIP, 0, 40)
    assert_matches(chunk, want)
    assert list(chunk.samples) == [0] and chunk.modality.count(INVALID) == 8


def test_a_chunk_of_contradictory_cases_only() -> None:
    chunk = evaluate_chunk(BASE, HIP, 32, 64)
    assert chunk.modality == bytearray([INVALID]) * 32
    assert (chunk.marks, chunk.heat, chunk.covered, chunk.samples, chunk.problems) == ({}, Counter(), Counter(), {}, {})


CONFLICT = "rules disagree on both (RATE-A, RATE-B) and none overrides the other"
GAP = "no rule rated both: the rule base has a gap"


def landmark(ev: Evaluation) -> Evaluation:
    return dataclasses.replace(ev, modality=Modality.LANDMARK, values={**ev.values, "modality": "landmark"})


def faults(i: int, ev: Evaluation) -> Evaluation | EngineError:
    """By index: an engine conflict, a gap, another engine error, an unjustified landmark, no chain,
    a repeated step; every other case as the engine answers."""
    match i % 8:
        case 1:
            return EngineError(f"{CONFLICT} (case {{'site': 'hip'}})")
        case 2:
            return EngineError(f"{GAP} (case {{'site': 'hip'}})")
        case 3:
            return EngineError("the engine stopped (case 3) and more")
        case 4:
            return landmark(ev)
        case 5:
            return dataclasses.replace(ev, chain=[])
        case 6:
            return dataclasses.replace(ev, chain=[*ev.chain, ev.chain[1], ev.chain[0]])
    return ev


def test_engine_errors_and_faulty_answers_are_the_chunks_problems(planted: Callable[[Fault], Recommender]) -> None:
    planted(faults)
    chunk = evaluate_chunk(BASE, HIP, 0, 64)  # 0..31 valid, 32..63 contradictory
    want = expected(HIP, 0, 64, faults)
    assert_matches(chunk, want)
    assert [i for i, code in enumerate(chunk.modality) if code == FAILED] == [i for i in range(32) if i % 8 in (1, 2, 3)]
    problems = chunk.problems
    assert problems[("conflict", CONFLICT)] == Seen(4, 1, HIP.case(1))
    assert problems[("gap", GAP)] == Seen(4, 2, HIP.case(2))
    assert problems[("engine", "the engine stopped")] == Seen(4, 3, HIP.case(3))
    assert problems[("landmark-unjustified", "landmark recommended without landmark_suitable")] == Seen(4, 4, HIP.case(4))
    assert problems[("chosen-not-appropriate", "landmark chosen but not usually appropriate")] == Seen(4, 4, HIP.case(4))
    assert problems[("totality", "no sourced reasoning chain")] == Seen(4, 5, HIP.case(5))
    first, second = REC.evaluate(resolve(HIP.case(6), KB).values).chain[:2]
    repeats = f"the chain repeats {', '.join(sorted((first.id, second.id)))}"
    assert [(key, seen) for key, seen in problems.items() if key[0] == "repeated-step"] == [
        (("repeated-step", repeats), Seen(4, 6, HIP.case(6)))
    ]
    assert all(seen.first % 8 in (4, 5, 6) for (name, _), seen in problems.items() if name not in ("conflict", "gap", "engine"))


def test_an_unjustified_landmark_breaks_its_invariant(planted: Callable[[Fault], Recommender]) -> None:
    """The invariants' breaches come back with their count and the lightest cases (then lowest index)."""
    planted(lambda i, ev: landmark(ev) if i % 5 == 0 else ev)
    chunk = evaluate_chunk(BASE, HIP, 0, 32)
    breach = chunk.breaches["INV-LANDMARK-JUSTIFIED"]
    faulty = [i for i in range(32) if i % 5 == 0]
    assert breach.count == len(faulty) == 7
    lightest = sorted((weight(HIP.case(i)), i) for i in faulty)[:3]
    assert [(key, case) for key, case, _ in breach.smallest] == [(key, HIP.case(key[1])) for key in lightest]
    assert all(problem.startswith("required landmark_suitable") for _, _, problem in breach.smallest)
    assert chunk.covered["INV-LANDMARK-JUSTIFIED"] == 7
    assert all(name == "INV-LANDMARK-JUSTIFIED" or breaches.count for name, breaches in chunk.breaches.items())


def test_a_joined_json_that_differs_from_pydantics_is_a_problem(
    planted: Callable[[Fault], Recommender], monkeypatch: pytest.MonkeyPatch
) -> None:
    rec = planted(lambda i, ev: ev)
    monkeypatch.setattr(rec, "recommend_json", lambda case: '{"joined": "differently"}')
    chunk = evaluate_chunk(BASE, HIP, 0, 8)
    assert chunk.samples == {0: '{"joined": "differently"}'}
    assert chunk.problems == {("json-identical", "joined JSON differs from model_dump_json"): Seen(1, 0, HIP.case(0))}


def test_the_worker_side_follows_the_rule_base_it_is_given(rule_copy: Any) -> None:
    """Two rule bases in turn in one worker: each chunk is evaluated with its own rules."""
    from tests.conftest import find_rule

    folder = rule_copy("landmark.yaml", lambda d: find_rule(d, "LM-FAVOURABLE")["when"].update(target_size="small"))
    from guidance_rules.rulebase.load import load

    gapped = RuleBase(str(folder.resolve()), load(folder).digest)
    knee = audit_spaces(KB, quick=True, sites=("knee",))[0]
    before = evaluate_chunk(BASE, knee, 0, 64)
    after = evaluate_chunk(gapped, knee, 0, 64)
    again = evaluate_chunk(BASE, knee, 0, 64)
    assert before.problems == again.problems == {} and before.modality == again.modality
    assert FAILED in after.modality and any(check_name == "gap" for check_name, _ in after.problems)
