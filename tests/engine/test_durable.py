"""The durable-rules guards. Each test fails if its guard is removed."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import ValidationError

from guidance_rules import EngineError
from guidance_rules.engine import durable
from guidance_rules.engine.compile import compile_rules
from guidance_rules.engine.durable import ENGINE_LOCK, DurableEngine
from guidance_rules.recommendation.recommender import Recommender
from guidance_rules.rulebase.domain import KnowledgeBase
from tests.conftest import examples

CASES = [example["case"] for _, example in examples()]


def test_creating_an_engine_starts_no_threads(knowledge: KnowledgeBase) -> None:
    """durable's Host starts timer threads that segfault under load; we must start none."""
    before = threading.active_count()
    Recommender(knowledge).recommend(CASES[0])
    assert threading.active_count() == before


def test_every_matching_rule_fires_not_just_the_first(recommender: Recommender) -> None:
    """Facts, not events: an event would be consumed by the first rule it matches."""
    values = recommender.resolve({"site": "hip", "injectate": "cell_based", "anatomy_variance": ["obesity"]}).values
    fired = recommender.evaluate(values).fired
    assert {"LU-DEPTH", "LU-NOT-PALPABLE", "LU-VARIANCE", "LU-NEUROVASCULAR", "LU-BONE"} <= set(fired)


def _sessions_after(recommender: Recommender, count: int) -> list[Any]:
    """Facts still held in any session id used so far."""
    engine = recommender.engine
    last = next(engine._sids)
    return [f for sid in range(1, last + 1) for f in engine.live_facts(f"e{sid}")]


def test_many_evaluations_leave_at_most_one_bounded_session(knowledge: KnowledgeBase) -> None:
    """5,000 evaluations: far past the 1,024-live-sessions limit and past a session's fact limit;
    one live session is left, within that limit, and nothing once it is released."""
    recommender = Recommender(knowledge, cache_size=0)
    for i in range(5000):
        recommender.recommend(CASES[i % len(CASES)])
        recommender.cache_clear()
    assert next(recommender.engine._sids) > 2  # the session was replaced when full
    held = _sessions_after(recommender, 5000)
    assert 0 < len(held) <= durable.MAX_SESSION_FACTS
    assert len({f["sid"] for f in held}) == 1
    recommender.engine.release()
    assert _sessions_after(recommender, 5000) == []


class Boom(Exception):
    pass


def planted_failure(rule_id: str, message: str) -> tuple[dict[str, bool], Callable[[str], None]]:
    """An on_fire hook that raises when `rule_id` fires, until disarmed (armed["on"] = False)."""
    armed = {"on": True}

    def on_fire(fired: str) -> None:
        if armed["on"] and fired == rule_id:
            raise Boom(message)

    return armed, on_fire


def test_an_action_that_raises_surfaces_and_leaves_no_session(knowledge: KnowledgeBase) -> None:
    armed, on_fire = planted_failure("LU-BONE", "planted failure")
    recommender = Recommender(knowledge, cache_size=0, on_fire=on_fire)
    with pytest.raises(EngineError, match="planted failure"):
        recommender.recommend({"site": "hip", "injectate": "prp"})
    assert _sessions_after(recommender, 1) == []
    armed["on"] = False
    oracle = Recommender(knowledge, cache_size=0)
    for case in CASES:
        assert recommender.recommend(case) == oracle.recommend(case)


def test_the_lock_is_held_while_rules_fire(knowledge: KnowledgeBase) -> None:
    held: list[bool] = []
    probe = threading.Thread  # a different thread cannot take an RLock held by the evaluator

    def on_fire(rule_id: str) -> None:
        got: list[bool] = []
        t = probe(target=lambda: got.append(ENGINE_LOCK.acquire(blocking=False)))
        t.start()
        t.join()
        if got[0]:
            ENGINE_LOCK.release()
        held.append(not got[0])

    Recommender(knowledge, cache_size=0, on_fire=on_fire).recommend(CASES[0])
    assert held and all(held)


def test_threads_agree_with_a_single_threaded_oracle(knowledge: KnowledgeBase) -> None:
    oracle = Recommender(knowledge, cache_size=0)
    expected = [oracle.recommend(c).model_dump_json() for c in CASES]
    shared = Recommender(knowledge, cache_size=0)
    failures: list[str] = []

    def work(offset: int) -> None:
        try:
            for i in range(300):
                k = (i + offset) % len(CASES)
                if shared.recommend(CASES[k]).model_dump_json() != expected[k]:
                    failures.append(f"case {k} differed")
        except Exception as error:
            failures.append(repr(error))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert len({f["sid"] for f in _sessions_after(shared, 0)}) <= 1  # the one live session
    shared.engine.release()
    assert _sessions_after(shared, 0) == []


def test_unknown_action_names_are_refused(knowledge: KnowledgeBase) -> None:
    engine = DurableEngine(compile_rules(knowledge).ruleset_json, {r.id for r in knowledge.rules})
    with pytest.raises(EngineError, match="unknown action"):
        engine.rule_of('{"NOT-A-RULE":{"m":{}}}')


def test_engine_errors_are_typed() -> None:
    with pytest.raises(EngineError):
        DurableEngine("{not json", set())


def test_a_failing_batch_leaves_no_session_and_the_next_is_correct(knowledge: KnowledgeBase) -> None:
    armed, on_fire = planted_failure("LU-SMALL", "planted failure in a batch")
    recommender = Recommender(knowledge, cache_size=0, on_fire=on_fire)
    resolved = [recommender.resolve(case).values for case in CASES]
    with pytest.raises(EngineError, match="planted failure in a batch"):
        recommender.evaluate_many(resolved)
    assert _sessions_after(recommender, 0) == []
    armed["on"] = False
    oracle = Recommender(knowledge, cache_size=0)
    again = recommender.evaluate_many(resolved)
    assert [e.fired for e in again] == [oracle.evaluate(v).fired for v in resolved]  # type: ignore[union-attr]


def test_a_batch_whose_last_case_fires_nothing_loses_no_firing(knowledge: KnowledgeBase) -> None:
    """Regression: durable returns the *last* fact's code, and "not handled" for that one fact
    once made the wrapper drop every action queued for the facts before it (a landmark knee lost
    LM-SUITABLE when batched before a knee with contrast, which fires nothing in that stratum)."""
    single = Recommender(knowledge, cache_size=0)
    cases = [
        {"site": "knee", "injectate": "corticosteroid"},
        {"site": "knee", "injectate": "corticosteroid", "contrast_confirmation": True},
        {"site": "first_cmc", "injectate": "corticosteroid", "contrast_confirmation": True},
        {"site": "knee", "injectate": "corticosteroid", "palpable": False},
    ]
    resolved = [single.resolve(c).values for c in cases]
    for order in (resolved, resolved[::-1], resolved[1:] + resolved[:1]):
        together = Recommender(knowledge, cache_size=0).evaluate_many(order)
        for values, result in zip(order, together, strict=True):
            assert not isinstance(result, Exception), result
            alone = single.evaluate(values)
            assert (result.fired, result.modality) == (alone.fired, alone.modality)


# -- fact identity: durable-rules files facts under a 32-bit hash of their id ---------------------


def _fnv1_32(text: str) -> int:
    """durable-rules' fnv1Hash32 (state.c), the hash it files a session's facts under."""
    value = 0x811C9DC5
    for byte in text.encode():
        value = ((value ^ byte) * 16777619) & 0xFFFFFFFF
    return value


def test_every_fact_id_and_sid_has_a_distinct_hash() -> None:
    """The ids a session can use never collide, so durable never takes a fact for another."""

    ids = [durable.fact_id(n) for n in range(durable.MAX_SESSION_FACTS)]
    ids += ["sid-" + durable.sid_name(n) for n in range(durable.SID_POOL)]
    assert len({_fnv1_32(text) for text in ids}) == len(ids)


def test_every_fact_carries_an_id_from_the_table(knowledge: KnowledgeBase) -> None:
    """Before: facts carried no id, durable made one from a hash of their content, and two distinct
    facts of one audit session whose ids hashed alike became one: the second case's fact was lost
    (the audit reported 'already held an identical fact'; with two ids of one hash durable can
    even abort the process). Now every fact's id comes from the table whose hashes are distinct."""
    from guidance_rules.engine.compile import flatten

    recommender = Recommender(knowledge, cache_size=0)
    stratum = recommender.compiled.strata[0]
    facts = [flatten(recommender.resolve({"site": site, "injectate": "prp"}).values, stratum.keys) for site in ("knee", "hip", "a1_pulley")]
    with recommender.engine.session() as session:
        session.fire_many(stratum.number, facts)
        held = session.held()
    ids = sorted(fact["id"] for fact in held if "case_no" in fact)
    assert ids == [durable.fact_id(0), durable.fact_id(1), durable.fact_id(2)]


def test_a_large_batch_is_split_into_sessions_and_equals_one_by_one(knowledge: KnowledgeBase) -> None:
    from guidance_rules.rulebase.space import as_json_case, site_space

    recommender = Recommender(knowledge, cache_size=0)
    space = site_space(knowledge)
    resolved = []
    for index in range(0, space.size, 17):
        try:
            resolved.append(recommender.resolve(as_json_case(space.case(index))).values)
        except ValidationError:
            continue  # a contradictory point of the space
    resolved = resolved[:4_000]
    many = recommender.evaluate_many(resolved)
    assert len(resolved) > recommender.session_cases  # more cases than one session may hold
    for values, evaluation in zip(resolved[::37], many[::37], strict=True):
        assert not isinstance(evaluation, EngineError)
        assert evaluation.fired == recommender.evaluate(values).fired
