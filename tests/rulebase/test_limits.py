"""The engine limits no grouping of rules can change are stated by the loader, with the file, the
rule and the count, before the engine is reached (tests/engine/test_capacity.py shows each limit
is durable-rules' own)."""

from __future__ import annotations

from typing import Any

import pytest

from guidance_rules.errors import RuleFileError
from guidance_rules.recommendation.recommender import Recommender
from guidance_rules.rulebase import limits
from guidance_rules.rulebase.conditions import Test as Check
from guidance_rules.rulebase.load import load
from tests.conftest import find_rule

# Fields an output rule may test with several values each, and a value list that holds for the
# rule's own example (a hip, corticosteroid case: fluoroscopy recommended).
MULTI: dict[str, Any] = {
    "site": ["hip", "knee"],
    "injectate": ["corticosteroid", "prp"],
    "region": ["peripheral", "spinal"],
    "palpable": [True, False],
    "near_neurovascular": [True, False],
    "precise_plane": [True, False],
    "compartment_specific": [True, False],
    "bone_obscures_path": [True, False],
    "contrast_confirmation": [True, False],
    "modality": ["fluoroscopy", "both"],
    "anatomy_variance": {"not": ["obesity", "effusion"]},
    "available_modalities": {"not": ["ultrasound", "fluoroscopy"]},
    "landmark_favourable": [True, False],
    "landmark_unreliable": [True, False],
    "delivery_critical": [True, False],
    "imaging_indicated": [True, False],
}


def with_tests(count: int) -> Any:
    def edit(data: dict[str, Any]) -> None:
        find_rule(data, "CAUTION-RADIATION")["when"] = dict(list(MULTI.items())[:count])

    return edit


def test_a_rule_with_more_multi_valued_tests_than_the_engine_takes_is_refused(rule_copy: Any) -> None:
    most = (limits.MAX_CONDITION_ENTRIES - 2) // 2
    Recommender(load(rule_copy("cautions.yaml", with_tests(most)))).close()  # at the limit: loads and compiles
    with pytest.raises(RuleFileError) as error:
        load(rule_copy("cautions.yaml", with_tests(most + 1)))
    assert (error.value.file, error.value.rule, error.value.key) == ("cautions.yaml", "CAUTION-RADIATION", "when")
    assert f"{most + 1} tests with several values" in str(error.value)
    assert f"at most {most} per rule" in str(error.value)


def test_a_rule_reading_more_values_than_a_fact_holds_is_refused() -> None:
    from tests.engine.test_capacity import rule

    fits = rule(1, *(Check(f"p{k}", frozenset({True})) for k in range(limits.MAX_KEYS_PER_FACT)))
    limits.check_limits([fits])
    over = rule(2, *(Check(f"p{k}", frozenset({True})) for k in range(limits.MAX_KEYS_PER_FACT + 1)))
    with pytest.raises(RuleFileError, match=f"reads {limits.MAX_KEYS_PER_FACT + 1} values") as error:
        limits.check_limits([fits, over])
    assert (error.value.file, error.value.rule) == ("capacity.yaml", "R2")
