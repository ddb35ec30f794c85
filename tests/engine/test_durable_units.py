"""The durable-rules wrapper at its own layer, on a small compiled ruleset: what a batch returns case
by case, when the live session is kept, replaced or removed, how each failure surfaces, and what
closing an engine does. (test_durable.py proves the guards on the shipped rule base.)"""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from guidance_rules.engine import durable
from guidance_rules.engine.durable import MAX_SESSION_FACTS, DurableEngine
from guidance_rules.errors import EngineBusyError, EngineError, EngineUnavailableError
from guidance_rules.rulebase.limits import FACT_ENVELOPE

# Three rules on one fact tagged 1: A when x is "a", B when x is "a" or "b", C when y is true.
RULESET = {
    "A": {"all": [{"m": {"$and": [{"stratum": 1}, {"x": "a"}]}}]},
    "B": {"all": [{"m": {"$and": [{"stratum": 1}, {"$or": [{"x": "a"}, {"x": "b"}]}]}}]},
    "C": {"all": [{"m": {"$and": [{"stratum": 2}, {"y": True}]}}]},
}


@pytest.fixture
def engine() -> Iterator[DurableEngine]:
    made = DurableEngine(json.dumps(RULESET), set(RULESET))
    yield made
    made.close()


def facts(*xs: str) -> list[dict[str, Any]]:
    return [{"x": x} for x in xs]


def test_each_case_gets_its_own_firings_in_order(engine: DurableEngine) -> None:
    xs = ["a", "c", "b", *["c"] * 9, "a", "b"]  # past ten cases: case numbers of two digits
    with engine.session() as session:
        fired = session.fire_many(1, facts(*xs))
    expected = {"a": ["A", "B"], "b": ["B"], "c": []}
    assert [sorted(f) for f in fired] == [expected[x] for x in xs]


def test_parts_of_a_stratum_are_asserted_together_case_by_case(engine: DurableEngine) -> None:
    with engine.session() as session:
        fired = session.fire_parts(1, [(1, facts("a", "c", "b")), (2, [{"y": True}, {"y": True}, {"y": False}])])
    assert [sorted(f) for f in fired] == [["A", "B", "C"], ["C"], ["B"]]


def test_no_cases_fire_nothing_and_assert_nothing(engine: DurableEngine) -> None:
    with engine.session() as session:
        assert session.fire_parts(1, []) == []
        assert session.fire_parts(1, [(1, [])]) == []
        assert session.facts == 0 and not session.touched


def test_every_fact_of_a_session_gets_the_next_id(engine: DurableEngine) -> None:
    with engine.session() as session:
        session.fire_parts(1, [(1, facts("a", "b")), (2, [{"y": True}, {"y": True}])])
        session.fire_many(1, facts("a"))  # durable keeps only facts some rule matched: these all match
        held = session.held()
        assert session.facts == 5 and session.touched
    assert sorted(f["id"] for f in held) == sorted(durable.fact_id(n) for n in range(5))
    assert {(f["id"], f["stratum"], f["case_no"]) for f in held} >= {(durable.fact_id(1), 1, 1), (durable.fact_id(3), 2, 1)}
    assert {f["sid"] for f in held} == {session.sid}


def test_ids_and_session_names_are_numbered_from_fixed_tables() -> None:
    assert [durable.fact_id(n) for n in (0, 7, 16_383)] == ["f0", "f7", "f16383"]
    assert [durable.sid_name(n) for n in (1, 63, 64, 65)] == ["e1", "e63", "e0", "e1"]


def test_a_session_may_hold_at_most_the_fact_table(engine: DurableEngine) -> None:
    with engine.session() as session:
        session.facts = MAX_SESSION_FACTS - 2
        session.fire_many(1, facts("a", "b"))  # exactly full
        with pytest.raises(EngineError) as caught:
            session.fire_many(1, facts("a"))
    assert str(caught.value) == f"a session may hold {MAX_SESSION_FACTS} facts; split the batch (asked for {MAX_SESSION_FACTS + 1})"


# -- the live session ------------------------------------------------------------------------------


def evaluate(engine: DurableEngine, x: str, room: int = 1) -> str:
    with engine.session(room) as session:
        session.fire_many(1, facts(x))
        return session.sid


def test_the_live_session_is_kept_while_it_has_room(engine: DurableEngine) -> None:
    first = evaluate(engine, "a")
    assert evaluate(engine, "a") == first  # the same fact again: a new id, so not taken for the first
    assert evaluate(engine, "b", room=MAX_SESSION_FACTS - 2) == first  # 2 held + room for the rest: still fits
    assert len(engine.live_facts(first)) == 3
    replaced = evaluate(engine, "b", room=MAX_SESSION_FACTS - 2)  # 3 held: no room left
    assert replaced != first
    assert engine.live_facts(first) == []  # the full session was removed
    assert [f["x"] for f in engine.live_facts(replaced)] == ["b"]


def test_release_removes_the_live_session_and_the_next_evaluation_starts_another(engine: DurableEngine) -> None:
    first = evaluate(engine, "a")
    engine.release()
    assert engine.live_facts(first) == []
    second = evaluate(engine, "a")
    assert second != first and len(engine.live_facts(second)) == 1
    engine.release()
    engine.release()  # nothing live: nothing to do


def test_an_untouched_session_is_kept_and_never_deleted(engine: DurableEngine) -> None:
    with engine.session() as session:
        sid = session.sid
    engine.release()  # durable never held it: deleting it would be an error
    with engine.session() as session:
        assert session.sid != sid and session.facts == 0


def test_a_session_that_fails_is_removed_and_the_error_kept(engine: DurableEngine) -> None:
    first = evaluate(engine, "a")
    with pytest.raises(KeyError, match="mine"), engine.session() as session:
        session.fire_many(1, facts("b"))
        raise KeyError("mine")
    assert engine.live_facts(first) == []
    assert evaluate(engine, "a") != first


def test_a_failure_before_anything_is_asserted_drops_the_live_session(engine: DurableEngine) -> None:
    with pytest.raises(KeyError), engine.session() as session:
        sid = session.sid
        raise KeyError("before")
    assert evaluate(engine, "a") != sid


def test_removing_a_session_durable_no_longer_holds_is_an_engine_error(engine: DurableEngine) -> None:
    sid = evaluate(engine, "a")
    with durable.engine_entered():
        durable._durable.delete_state(engine.handle, sid)
    with pytest.raises(EngineError, match=f"could not remove engine session {sid}: "):
        engine.release()


# -- failures ------------------------------------------------------------------------------------------


class Planted(Exception):
    pass


def test_a_failing_hook_is_an_engine_error_and_the_session_is_removed() -> None:
    seen: list[str] = []

    def hook(rule_id: str) -> None:
        seen.append(rule_id)
        if rule_id == "B" and len(seen) > 1:  # the second evaluation, whichever of A and B fires first
            raise Planted("planted")

    engine = DurableEngine(json.dumps(RULESET), set(RULESET), on_fire=hook)
    try:
        first = evaluate(engine, "b")
        assert seen == ["B"]
        with pytest.raises(EngineError) as caught:
            evaluate(engine, "a")
        assert str(caught.value) == "a rule action failed at stratum 1: Planted('planted')"
        assert isinstance(caught.value.__cause__, Planted)
        assert engine.live_facts(first) == []
        seen.clear()
        assert evaluate(engine, "c") != first and seen == []
    finally:
        engine.close()


def test_an_asserted_fact_carries_the_values_and_exactly_the_envelope_the_loader_reserves(
    engine: DurableEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The loader refuses derived facts named like these keys (rulebase.limits.FACT_ENVELOPE):
    the names must be the ones this wrapper writes."""
    sent: list[str] = []
    real = durable._durable.assert_facts

    def spy(handle: int, payload: str) -> Any:
        sent.append(payload)
        return real(handle, payload)

    monkeypatch.setattr(durable._durable, "assert_facts", spy)
    with engine.session() as session:
        session.fire_many(1, facts("a"))
    [fact] = json.loads(sent[0])
    assert set(fact) - {"x"} == set(FACT_ENVELOPE)


def test_a_durable_error_names_the_stratum(engine: DurableEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(handle: int, payload: str) -> Any:
        raise durable._durable.error("Could not assert facts, error code: 303")

    monkeypatch.setattr(durable._durable, "assert_facts", refuse)
    with pytest.raises(EngineError) as caught, engine.session() as session:
        session.fire_many(7, facts("a"))
    assert str(caught.value) == "durable-rules failed at stratum 7: Could not assert facts, error code: 303"
    assert isinstance(caught.value.__cause__, durable._durable.error)


def test_a_fact_durable_takes_for_one_it_holds_is_an_error_never_a_silent_drop(engine: DurableEngine) -> None:
    """Fact ids come from a table whose hashes are distinct, so this cannot happen; if it did
    (here: the session's id counter set back, so a second fact gets the first one's id), the case
    would silently lose its firings."""
    with pytest.raises(EngineError) as caught, engine.session() as session:
        session.fire_many(1, facts("a"))
        session.facts = 0  # the next fact is given the id f0 again
        session.fire_many(1, facts("a"))
    assert str(caught.value) == "the engine took a fact of stratum 1 for one it already held"


def test_calling_in_from_a_hook_is_refused_not_reentered() -> None:
    box: list[DurableEngine] = []
    engine = DurableEngine(json.dumps(RULESET), set(RULESET), on_fire=lambda rule_id: box[0].release())
    box.append(engine)
    try:
        with pytest.raises(EngineError) as caught:
            evaluate(engine, "b")
        assert isinstance(caught.value.__cause__, EngineBusyError)
        assert str(caught.value.__cause__) == (
            "the rules engine is already running on this thread (was recommend() called from a signal "
            "handler or a rule hook?); call it again once the current evaluation has returned"
        )
    finally:
        engine.close()


def test_an_action_message_names_a_rule_of_this_engine(engine: DurableEngine) -> None:
    assert engine.rule_of('{"B":{"m":{"case_no":0}}}') == "B"
    assert engine.rule_of('{ "C" : {"m": {}}}') == "C"  # spaced: read by parsing it
    for message, names in (('{"Z":{"m":{}}}', ["Z"]), ('{ "A":{}, "B":{}}', ["A", "B"]), ('{ "Z":{}}', ["Z"])):
        with pytest.raises(EngineError) as caught:
            engine.rule_of(message)
        assert str(caught.value) == f"the engine fired an unknown action {names!r}"


def test_an_engine_without_the_extension_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    missing = ImportError("no durable_rules_engine")
    monkeypatch.setattr(durable, "_load_error", missing)
    with pytest.raises(EngineUnavailableError) as caught:
        DurableEngine(json.dumps(RULESET), set(RULESET))
    assert caught.value.cause is missing


def test_a_rejected_ruleset_says_so() -> None:
    with pytest.raises(EngineError, match=r"^durable-rules rejected the compiled rule base: "):
        DurableEngine("{not json", {"A"})


# -- closing ---------------------------------------------------------------------------------------


def test_a_closed_engine_holds_nothing_and_refuses_sessions() -> None:
    engine = DurableEngine(json.dumps(RULESET), set(RULESET))
    sid = evaluate(engine, "a")
    assert engine.live_facts(sid)
    engine.close()
    engine.close()  # idempotent
    assert engine.live_facts(sid) == []
    with pytest.raises(EngineError) as caught, engine.session():
        pass
    assert str(caught.value) == f"this engine ({engine.name}) is closed; build a new Recommender"


def test_engines_have_distinct_names() -> None:
    one, two = DurableEngine(json.dumps(RULESET), set(RULESET)), DurableEngine(json.dumps(RULESET), set(RULESET))
    try:
        assert one.name != two.name and one.name.startswith("guidance_rules_")
    finally:
        one.close()
        two.close()


def test_an_engine_closed_during_another_evaluation_is_removed_once_it_returns() -> None:
    other = DurableEngine(json.dumps(RULESET), set(RULESET))
    other_sid = evaluate(other, "a")
    engine = DurableEngine(json.dumps(RULESET), set(RULESET), on_fire=lambda rule_id: other.close())
    try:
        evaluate(engine, "a")
        assert durable._orphans == []
        assert other.live_facts(other_sid) == []
    finally:
        engine.close()


def _rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096 / 2**20


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="reads the resident size from /proc")
def test_closing_an_engine_frees_its_live_sessions_state() -> None:
    """durable's delete_ruleset leaves a live session's state allocated: closing deletes it first.
    Measured on this ruleset: 300 engines whose live session is left behind grow by about 24 MiB."""

    def used_once() -> None:
        engine = DurableEngine(json.dumps(RULESET), set(RULESET))
        evaluate(engine, "a")
        engine.close()

    for _ in range(20):
        used_once()
    gc.collect()
    before = _rss_mib()
    for _ in range(300):
        used_once()
    gc.collect()
    assert _rss_mib() - before < 8
