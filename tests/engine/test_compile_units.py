"""Compilation at its own layer, on small rule sets written here: the strata and their order, the
keys each stratum and part reads, and (run in the real engine) that the compiled ruleset fires
exactly the rules whose conditions hold, for every form of test, and only for facts of their own
part. These test what `compile_rules` promises, not how it builds the network."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterable, Mapping
from typing import Any

import pytest

from guidance_rules.engine.compile import Compiled, compile_rules, flatten, list_key
from guidance_rules.engine.durable import DurableEngine
from guidance_rules.errors import RuleFileError
from guidance_rules.rulebase import limits
from guidance_rules.rulebase.conditions import Test as Check
from guidance_rules.rulebase.conditions import holds
from guidance_rules.rulebase.domain import KnowledgeBase, Rule

FACTS = {"near": "", "far": "", "clear": "", "unused": ""}


def make(rid: str, kind: str, *tests: Check, derive: str | None = None) -> Rule:
    return Rule(
        id=rid, title=rid, version=1, status="active", file="units.yaml", index=0, tests=tests, kind=kind, derive=derive,
        rate={}, text=None, overrides=(), conclusion="", rationale="", sources=(), cited=(), figures=(), bottom_line=False,
        fires=(), silent=(),
    )  # fmt: skip


def kb_with(knowledge: KnowledgeBase, rules: Iterable[Rule], facts: Mapping[str, str] = FACTS) -> KnowledgeBase:
    return dataclasses.replace(knowledge, rules=tuple(rules), facts=dict(facts), inactive=())


DEPTH = Check("depth", frozenset({"deep"}))
RULES = [
    make("OUT-ANY", "caution"),
    make("D-NEAR", "derive", DEPTH, derive="near"),
    make("RATE-A", "rate", Check("near", frozenset({True}))),
    make("D-FAR", "derive", Check("near", frozenset({False})), derive="far"),
    make("D-CLEAR", "derive", Check("far", frozenset({True})), Check("near", frozenset({False})), derive="clear"),
    make("D-NEAR-TOO", "derive", Check("palpable", frozenset({True})), derive="near"),
    make("DOC", "documentation", Check("modality", frozenset({"both"}))),
    make("Q", "question", Check("anatomy_variance", frozenset({"obesity", "effusion"}), is_list=True)),
    make("RATE-B", "rate"),
]


@pytest.fixture
def compiled(knowledge: KnowledgeBase) -> Compiled:
    return compile_rules(kb_with(knowledge, RULES))


def ids(rules: Iterable[Rule]) -> list[str]:
    return [r.id for r in rules]


def test_derivations_come_in_strata_then_ratings_then_outputs(compiled: Compiled) -> None:
    assert [s.number for s in compiled.strata] == [1, 2, 3, 4, 5]
    assert [ids(s.rules) for s in compiled.derive] == [["D-NEAR", "D-NEAR-TOO"], ["D-FAR"], ["D-CLEAR"]]
    assert [s.produces for s in compiled.derive] == [("near",), ("far",), ("clear",)]
    assert ids(compiled.rate.rules) == ["RATE-A", "RATE-B"] and compiled.rate.number == 4 and compiled.rate.produces == ()
    assert ids(compiled.output.rules) == ["OUT-ANY", "DOC", "Q"] and compiled.output.number == 5
    assert compiled.strata == (*compiled.derive, compiled.rate, compiled.output)
    assert compiled.underived == ("unused",)


def test_without_derivations_ratings_are_the_first_stratum(knowledge: KnowledgeBase) -> None:
    compiled = compile_rules(kb_with(knowledge, [RULES[0], RULES[2], RULES[-1]], facts={"near": ""}))
    assert compiled.derive == () and compiled.rate.number == 1 and compiled.output.number == 2
    assert compiled.underived == ("near",)
    assert [s.number for s in compiled.strata] == [1, 2]


def test_a_stratum_reads_its_rules_fields_and_a_list_field_once_per_value(compiled: Compiled) -> None:
    assert compiled.derive[0].keys == ("depth", "palpable")
    assert compiled.derive[2].keys == ("far", "near")
    assert compiled.output.keys == tuple(
        sorted(["modality", list_key("anatomy_variance", "effusion"), list_key("anatomy_variance", "obesity")])
    )
    assert compiled.rate.keys == ("near",)


def test_each_stratum_is_one_part_here_with_its_own_tag(compiled: Compiled) -> None:
    parts = [part for stratum in compiled.strata for part in stratum.parts]
    assert [p.tag for p in parts] == [1, 2, 3, 4, 5]
    assert all(len(s.parts) == 1 and s.parts[0].rules == s.rules and s.parts[0].keys == s.keys for s in compiled.strata)
    assert compiled.parts == 5


def test_flatten_gives_each_key_its_value_and_each_list_value_a_flag() -> None:
    values = {"depth": "deep", "palpable": False, "anatomy_variance": ("obesity",), "site": "knee"}
    keys = ("depth", list_key("anatomy_variance", "effusion"), list_key("anatomy_variance", "obesity"), "palpable")
    assert flatten(values, keys) == {
        "depth": "deep",
        list_key("anatomy_variance", "effusion"): False,
        list_key("anatomy_variance", "obesity"): True,
        "palpable": False,
    }
    assert flatten(values, ()) == {}
    assert list_key("anatomy_variance", "obesity") != list_key("anatomy_variance", "effusion")


# -- the compiled ruleset in the engine ----------------------------------------------------------


def fire(compiled: Compiled, values_list: list[dict[str, Any]], number: int) -> list[list[str]]:
    """Fire one stratum of `compiled` for each of these cases, as the recommender does."""
    (stratum,) = [s for s in compiled.strata if s.number == number]
    engine = DurableEngine(compiled.ruleset_json, {r.id for r in compiled.knowledge.rules})
    try:
        with engine.session() as session:
            parts = [(part.tag, [flatten(values, part.keys) for values in values_list]) for part in stratum.parts]
            # a test of "includes any of" fires once per matching value: the recommender keeps one
            return [sorted(set(fired)) for fired in session.fire_parts(stratum.number, parts)]
    finally:
        engine.close()


FORMS = [
    Check("depth", frozenset({"deep"})),
    Check("depth", frozenset({"deep", "superficial"})),
    Check("depth", frozenset({"deep"}), negated=True),
    Check("depth", frozenset({"deep", "superficial"}), negated=True),
    Check("palpable", frozenset({True})),
    Check("palpable", frozenset({False})),
    Check("palpable", frozenset({True}), negated=True),
    Check("anatomy_variance", frozenset({"obesity"}), is_list=True),
    Check("anatomy_variance", frozenset({"obesity", "effusion"}), is_list=True),
    Check("anatomy_variance", frozenset({"obesity"}), negated=True, is_list=True),
    Check("anatomy_variance", frozenset({"obesity", "effusion"}), negated=True, is_list=True),
    Check("injectate", frozenset({"prp", "other", "cell_based"})),
]
CASES = [
    {"depth": depth, "palpable": palpable, "anatomy_variance": variance, "injectate": injectate}
    for depth, palpable, variance, injectate in itertools.product(
        ("superficial", "intermediate", "deep"),
        (False, True),
        ((), ("obesity",), ("effusion",), ("effusion", "obesity")),
        ("prp", "corticosteroid"),
    )
]


def test_every_form_of_test_fires_exactly_when_it_holds(knowledge: KnowledgeBase) -> None:
    rules = [make(f"ONE-{i}", "caution", test) for i, test in enumerate(FORMS)]
    rules += [make(f"TWO-{i}-{j}", "caution", FORMS[i], FORMS[j]) for i, j in ((0, 7), (3, 10), (5, 8), (1, 11), (9, 4))]
    rules.append(make("ALWAYS", "caution"))
    compiled = compile_rules(kb_with(knowledge, rules, facts={}))
    fired = fire(compiled, CASES, compiled.output.number)
    for case, got in zip(CASES, fired, strict=True):
        assert got == sorted(r.id for r in rules if holds(r.tests, case)), case


def test_a_rule_fires_only_for_facts_of_its_own_stratum(knowledge: KnowledgeBase) -> None:
    rules = [
        make("RATE-ALWAYS", "rate"),
        make("OUT-ALWAYS", "caution"),
        make("D-ALWAYS", "derive", derive="near"),
        make("RATE-DEEP", "rate", DEPTH),
    ]
    compiled = compile_rules(kb_with(knowledge, rules, facts={"near": ""}))
    case = [{"depth": "deep"}]
    assert fire(compiled, case, 1) == [["D-ALWAYS"]]
    assert fire(compiled, case, 2) == [["RATE-ALWAYS", "RATE-DEEP"]]
    assert fire(compiled, case, 3) == [["OUT-ALWAYS"]]


def test_a_stratum_too_large_for_one_part_is_split_and_still_fires_every_rule(knowledge: KnowledgeBase) -> None:
    many = [make(f"C{i}", "caution", DEPTH) for i in range(limits.MAX_RULES_PER_NODE + 5)]
    compiled = compile_rules(kb_with(knowledge, [*many, make("RATE", "rate", DEPTH)], facts={}))
    parts = compiled.output.parts
    assert [len(p.rules) for p in parts] == [limits.MAX_RULES_PER_NODE, 5]
    assert [p.tag for p in compiled.strata[0].parts + parts] == [1, 2, 3]
    assert [r for p in parts for r in p.rules] == list(compiled.output.rules) == many
    assert compiled.parts == 3
    assert fire(compiled, [{"depth": "deep"}, {"depth": "superficial"}], compiled.output.number) == [sorted(r.id for r in many), []]


def test_a_part_holds_no_more_tests_below_the_stratum_node_than_the_engine_does(knowledge: KnowledgeBase) -> None:
    """Regression: the part model checked the test count of every node but the part's own (stratum)
    node, so 512 rules testing one field for different values made one part, on which durable-rules
    hung when a fact was asserted (513: when the ruleset was created)."""
    rules = [make(f"C{i}", "caution", Check("x", frozenset({f"v{i}"}))) for i in range(limits.MAX_TESTS_PER_NODE + 9)]
    compiled = compile_rules(kb_with(knowledge, rules, facts={}))
    assert [len(p.rules) for p in compiled.output.parts] == [limits.MAX_TESTS_PER_NODE, 9]  # checked before the engine sees it
    cases = [{"x": "v0"}, {"x": f"v{limits.MAX_TESTS_PER_NODE}"}, {"x": f"v{len(rules) - 1}"}, {"x": "none"}]
    assert fire(compiled, cases, compiled.output.number) == [["C0"], [f"C{limits.MAX_TESTS_PER_NODE}"], [f"C{len(rules) - 1}"], []]


def test_a_rule_no_part_can_hold_is_refused_naming_it(knowledge: KnowledgeBase) -> None:
    wide = Check("anatomy_variance", frozenset(f"v{k}" for k in range(limits.MAX_MATCH_STACK + 1)), is_list=True)
    with pytest.raises(RuleFileError) as caught:
        compile_rules(kb_with(knowledge, [make("OK", "caution", DEPTH), make("WIDE", "caution", wide)], facts={}))
    assert (caught.value.file, caught.value.rule, caught.value.key) == ("units.yaml", "WIDE", "when")
    assert str(caught.value).endswith(f"durable-rules allows {limits.MAX_MATCH_STACK}: split the rule")


def test_more_parts_than_the_engine_holds_are_refused(knowledge: KnowledgeBase, monkeypatch: pytest.MonkeyPatch) -> None:
    rules = [make("RATE", "rate"), make("OUT", "caution"), make("D", "derive", derive="near")]
    monkeypatch.setattr(limits, "MAX_TESTS_PER_NODE", 3)
    compile_rules(kb_with(knowledge, rules, facts={"near": ""}))  # three parts: at the limit
    with pytest.raises(RuleFileError) as caught:
        compile_rules(kb_with(knowledge, [*rules, make("D2", "derive", Check("near", frozenset({True})), derive="far")], facts=FACTS))
    assert (caught.value.file, caught.value.rule, caught.value.key) == ("ruleset.yaml", None, "rule_files")
    assert "the active rules need 4 engine parts" in str(caught.value) and "it holds at most 3" in str(caught.value)
