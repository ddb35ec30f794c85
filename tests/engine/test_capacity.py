"""durable-rules' fixed capacities (`rulebase.limits`, read from its C source) against the real engine.

The compiler packs a stratum's rules into parts by a model of the network durable-rules builds;
these tests show the model is the engine's own limit, not a guess: a part the model accepts at
the limit matches in the engine, one rule more is refused by the engine when compiled as one part
("error code: 303"), and the compiler then splits it into parts the engine answers correctly.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest

from guidance_rules.engine import compile as compiler
from guidance_rules.engine.durable import DurableEngine
from guidance_rules.errors import EngineError
from guidance_rules.rulebase import limits
from guidance_rules.rulebase.conditions import Test as Check
from guidance_rules.rulebase.domain import Rule

Shape = Callable[[int], tuple[list[Rule], dict[str, Any]]]


def rule(number: int, *tests: Check) -> Rule:
    return Rule(
        id=f"R{number}",
        title="capacity",
        version=1,
        status="active",
        file="capacity.yaml",
        index=number,
        tests=tests,
        kind="caution",
        derive=None,
        rate={},
        text="t",
        overrides=(),
        conclusion="capacity test",
        rationale="capacity test",
        sources=(),
        cited=(),
        figures=(),
        bottom_line=False,
        fires=(),
        silent=(),
    )


def joins(n: int) -> tuple[list[Rule], dict[str, Any]]:
    """n rules with one list of values on the same field: n joins below each branch."""
    rules = [rule(i, Check("x", frozenset({"a", "b"})), Check("y", frozenset({i}))) for i in range(n)]
    return rules, {"x": "a", "y": 0}


def negations(n: int) -> tuple[list[Rule], dict[str, Any]]:
    """n rules each testing a different field "is not": every one matches at once."""
    rules = [rule(i, Check(f"p{i}", frozenset({1}), negated=True)) for i in range(n)]
    return rules, {f"p{i}": 0 for i in range(n)}


def fields(n: int) -> tuple[list[Rule], dict[str, Any]]:
    """n rules each testing a different field, then one shared field."""
    rules = [rule(i, Check(f"p{i}", frozenset({True})), Check("q", frozenset({True}))) for i in range(n)]
    return rules, {"q": True, **{f"p{i}": True for i in range(n)}}


def fire(groups: list[list[Rule]], fact: dict[str, Any]) -> list[str]:
    """Compile `groups` as parts tagged 1, 2, ... and assert `fact` once per part, each time with
    only the values that part reads (as the recommender does)."""
    ruleset = {r.id: {"all": [{"m": compiler._condition(r, tag)}]} for tag, group in enumerate(groups, 1) for r in group}
    engine = DurableEngine(json.dumps(ruleset), set(ruleset))
    parts = [(tag, [{key: fact[key] for key in compiler._keys(group)}]) for tag, group in enumerate(groups, 1)]
    try:
        with engine.session() as session:
            (fired,) = session.fire_parts(1, parts)
        return sorted(fired)
    finally:
        engine.close()


def refusal(groups: list[list[Rule]], fact: dict[str, Any]) -> str:
    """What the engine says asserting `fact` into `groups` compiled as parts, in a child process:
    after an overflow durable-rules' state is damaged, and deleting it can abort the process."""
    ruleset = {r.id: {"all": [{"m": compiler._condition(r, tag)}]} for tag, group in enumerate(groups, 1) for r in group}
    payload = [{**fact, "sid": "s1", "id": "f1", "stratum": tag} for tag in range(1, len(groups) + 1)]
    script = (
        "import json, os, sys, durable_rules_engine as d\n"
        "h = d.create_ruleset('capacity', sys.argv[1])\n"
        "try:\n    d.assert_facts(h, sys.argv[2]); print('accepted')\n"
        "except d.error as error:\n    print(error)\n"
        "sys.stdout.flush(); os._exit(0)\n"
    )
    done = subprocess.run([sys.executable, "-c", script, json.dumps(ruleset), json.dumps(payload)], capture_output=True, text=True)
    return done.stdout.strip()


@pytest.mark.parametrize("shape", [joins, negations, fields])
def test_the_part_model_is_the_engines_match_stack_limit(shape: Shape) -> None:
    at_limit, fact = shape(limits.MAX_MATCH_STACK)
    assert len(compiler._pack(at_limit)) == 1
    expected = sorted(r.id for r in at_limit if all(t.holds(fact) for t in r.tests))
    assert fire([at_limit], fact) == expected

    over, fact = shape(limits.MAX_MATCH_STACK + 1)
    assert "error code: 303" in refusal([over], fact)  # one part, as the compiler did before parts
    groups = compiler._pack(over)
    assert len(groups) == 2
    assert fire(groups, fact) == sorted(r.id for r in over if all(t.holds(fact) for t in r.tests))


def test_tests_of_one_field_for_different_values_share_a_part() -> None:
    """At most one of them matches a fact, so 300 of them fit one part (and the engine agrees)."""
    rules = [rule(i, Check("x", frozenset({f"v{i}"}))) for i in range(300)]
    assert len(compiler._pack(rules)) == 1
    assert fire([rules], {"x": "v7"}) == ["R7"]


def test_a_part_holds_no_more_rules_on_one_node_than_the_engine_does() -> None:
    rules = [rule(i, Check("x", frozenset({"a"}))) for i in range(limits.MAX_RULES_PER_NODE + 1)]
    groups = compiler._pack(rules)
    assert [len(g) for g in groups] == [limits.MAX_RULES_PER_NODE, 1]
    assert len(fire(groups, {"x": "a"})) == len(rules)


def test_a_part_reads_no_more_values_than_a_fact_may_hold() -> None:
    """30 rules reading 10 fields each: 300 values, more than one fact may carry (a fact of 255
    properties or more is not refused reliably: it crashed the process here), so two parts."""
    rules = [rule(i, *(Check(f"p{i}_{k}", frozenset({True})) for k in range(10))) for i in range(30)]
    groups = compiler._pack(rules)
    assert [len(compiler._keys(g)) for g in groups] == [250, 50]
    assert len(compiler._keys(rules)) > limits.MAX_KEYS_PER_FACT
    fact = {key: True for key in compiler._keys(rules)}
    assert fire(groups, fact) == sorted(r.id for r in rules)


def test_the_condition_limit_is_the_engines() -> None:
    """14 tests with several values compile; the 15th is refused by the engine (error 113)."""
    most = (limits.MAX_CONDITION_ENTRIES - 2) // 2
    assert most == 14

    def ruleset(count: int) -> str:
        many = rule(0, *(Check(f"p{k}", frozenset({1, 2})) for k in range(count)))
        assert limits.condition_entries(limits.multi_valued(many)) == 2 + 2 * count
        return json.dumps({many.id: {"all": [{"m": compiler._condition(many, 1)}]}})

    DurableEngine(ruleset(most), {"R0"}).close()
    with pytest.raises(EngineError, match="error code: 113"):
        DurableEngine(ruleset(most + 1), {"R0"})


def test_the_rule_limit_is_the_engines() -> None:
    """durable-rules holds 4,096 rules in one ruleset and refuses the 4,097th (error 106)."""

    def ruleset(count: int) -> str:  # 200 rules a part, so that no node of the network overflows first
        return json.dumps({f"R{i}": {"all": [{"m": {"$and": [{"stratum": i // 200}, {"x": i % 200}]}}]} for i in range(count)})

    DurableEngine(ruleset(limits.MAX_RULES), set()).close()
    with pytest.raises(EngineError, match="error code: 106"):
        DurableEngine(ruleset(limits.MAX_RULES + 1), set())


def test_too_many_parts_are_refused_before_the_engine(monkeypatch: pytest.MonkeyPatch, knowledge: Any) -> None:
    monkeypatch.setattr(limits, "MAX_TESTS_PER_NODE", 3)
    with pytest.raises(Exception, match="engine parts") as error:
        compiler.compile_rules(knowledge)
    assert type(error.value).__name__ == "RuleFileError"
