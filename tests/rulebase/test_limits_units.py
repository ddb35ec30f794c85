"""The load-time engine limits at their own layer, on stand-in rules: each limit is enforced exactly
at its bound (the bound itself loads), only active rules count, and each refusal names the file,
the rule, the key and the numbers."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from guidance_rules.errors import RuleFileError
from guidance_rules.rulebase import limits
from guidance_rules.rulebase.conditions import Test as Check


@dataclass(frozen=True)
class Stub:
    id: str
    file: str = "stub.yaml"
    status: str = "active"
    tests: tuple[Check, ...] = ()


def multi(count: int) -> tuple[Check, ...]:
    return tuple(Check(f"p{k}", frozenset({1, 2})) for k in range(count))


def test_the_bounds_are_durable_rules_capacities() -> None:
    assert (limits.MAX_RULES, limits.MAX_CONDITION_ENTRIES, limits.MAX_KEYS_PER_FACT) == (4096, 31, 250)


def test_a_condition_takes_two_entries_and_two_more_per_test_of_several_values() -> None:
    assert [limits.condition_entries(n) for n in (0, 1, 14)] == [2, 4, 30]
    tests = (Check("a", frozenset({1})), Check("b", frozenset({1, 2})), Check("c", frozenset({"x", "y", "z"}), is_list=True))
    assert limits.multi_valued(Stub("R", tests=tests)) == 2
    assert limits.multi_valued(Stub("R", tests=tests[:1])) == 0


def test_a_list_field_reads_one_value_per_item_a_scalar_field_one() -> None:
    tests = (Check("a", frozenset({1, 2, 3})), Check("v", frozenset({"x", "y"}), is_list=True), Check("w", frozenset({"z"}), is_list=True))
    assert limits.engine_keys(Stub("R", tests=tests)) == 1 + 2 + 1
    assert limits.engine_keys(Stub("R")) == 0


def test_the_most_rules_load_and_one_more_active_rule_is_refused() -> None:
    most = [Stub(f"R{i}") for i in range(limits.MAX_RULES)]
    drafts = [Stub(f"D{i}", status=status) for i, status in enumerate(["draft", "retired"] * 3)]
    limits.check_limits([*most, *drafts])  # inactive rules do not count
    with pytest.raises(RuleFileError) as caught:
        limits.check_limits([*most[:10], *drafts, *most[10:], Stub("LAST", file="late.yaml"), Stub("AFTER", file="after.yaml")])
    error = caught.value
    assert (error.file, error.rule, error.key) == ("late.yaml", None, "rules")
    assert str(error) == (
        "late.yaml, key 'rules': the rule base has 4,098 active rules and this file takes it past 4,096, the most the engine "
        "(durable-rules) holds in one ruleset; retire rules (status: retired) or merge rules with one conclusion"
    )


def test_a_rule_with_the_most_multi_valued_tests_loads_and_one_more_is_refused() -> None:
    most = (limits.MAX_CONDITION_ENTRIES - 2) // 2
    limits.check_limits([Stub("OK", tests=multi(most))])
    limits.check_limits([Stub("DRAFT", status="draft", tests=multi(most + 1))])
    with pytest.raises(RuleFileError) as caught:
        limits.check_limits([Stub("OK", tests=multi(most)), Stub("WIDE", file="wide.yaml", tests=multi(most + 1))])
    error = caught.value
    assert (error.file, error.rule, error.key) == ("wide.yaml", "WIDE", "when")
    assert (
        str(error) == "wide.yaml, rule WIDE, key 'when': 15 tests with several values; the engine takes at most 14 per rule: split the rule"
    )


def test_a_rule_reading_the_most_values_loads_and_one_more_is_refused() -> None:
    def reading(count: int) -> tuple[Check, ...]:
        return (Check("v", frozenset(f"x{k}" for k in range(count)), is_list=True),)

    limits.check_limits([Stub("OK", tests=reading(limits.MAX_KEYS_PER_FACT))])
    with pytest.raises(RuleFileError) as caught:
        limits.check_limits([Stub("BIG", file="big.yaml", tests=reading(limits.MAX_KEYS_PER_FACT + 1))])
    error = caught.value
    assert (error.file, error.rule, error.key) == ("big.yaml", "BIG", "when")
    assert str(error) == (
        "big.yaml, rule BIG, key 'when': the condition reads 251 values (a list field counts once per value); "
        "the engine takes at most 250 per rule: split the rule"
    )


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("palpable", "is a case field"),
        *((key, "is a key the engine gives every fact (case_no, sid, id, stratum)") for key in limits.FACT_ENVELOPE),
        ("a__b", "is not a fact name"),
        ("Upper", "is not a fact name"),
        ("_lead", "is not a fact name"),
        ("trail_", "is not a fact name"),
        ("has space", "is not a fact name"),
        ("", "is not a fact name"),
    ],
)
def test_a_derived_fact_the_engine_would_read_as_something_else_is_refused(name: str, why: str) -> None:
    """Named `sid` or `stratum`, a derived fact collides with the keys every asserted fact carries
    (a gap at every case, or a silently different answer); named `a__b`, flattening crashed."""
    with pytest.raises(RuleFileError) as caught:
        limits.check_fact_names(["fine", name], ["palpable", "site"])
    assert (caught.value.file, caught.value.key) == ("facts.yaml", f"facts.{name}")
    assert f"derived fact '{name}' {why}" in str(caught.value)


def test_fact_names_the_engine_reads_as_they_are() -> None:
    limits.check_fact_names(["a", "landmark_favourable", "us2_fit", "x9"], ["palpable"])
