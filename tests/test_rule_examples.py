"""Every rule ships with cases that must fire it and cases that must not (like Semgrep/Sigma tests)."""

from __future__ import annotations

from typing import Any

import pytest

from guidance_rules.recommendation.recommender import Recommender
from guidance_rules.rulebase.load import default_knowledge

RULES = default_knowledge().rules
CASES = [(rule.id, "fires", case) for rule in RULES for case in rule.fires] + [
    (rule.id, "silent", case) for rule in RULES for case in rule.silent
]


def fired(recommender: Recommender, case: dict[str, Any]) -> list[str]:
    resolved = recommender.resolve(case).values
    return recommender.evaluate(resolved).fired


@pytest.mark.parametrize(("rule_id", "expect", "case"), CASES, ids=[f"{r}-{e}-{i}" for i, (r, e, _) in enumerate(CASES)])
def test_rule_example(recommender: Recommender, rule_id: str, expect: str, case: dict[str, Any]) -> None:
    ids = fired(recommender, case)
    if expect == "fires":
        assert rule_id in ids, f"{rule_id} should fire for {case}; fired: {ids}"
    else:
        assert rule_id not in ids, f"{rule_id} should not fire for {case}"


def test_every_rule_has_a_firing_example() -> None:
    assert all(rule.fires for rule in RULES)


def test_every_conditional_rule_has_a_silent_example() -> None:
    lacking = [rule.id for rule in RULES if rule.tests and not rule.silent]
    assert not lacking
