"""The example cases: expected modality, sourced reasoning, and coverage of the case space."""

from __future__ import annotations

from typing import Any

import pytest

from guidance_rules import Modality, recommend
from guidance_rules.model import Variance
from guidance_rules.rulebase.domain import KnowledgeBase
from tests.conftest import examples

EXAMPLES = examples()


@pytest.mark.parametrize(("name", "example"), EXAMPLES, ids=[n for n, _ in EXAMPLES])
def test_example_gets_expected_modality(name: str, example: dict[str, Any], knowledge: KnowledgeBase) -> None:
    rec = recommend(example["case"])
    assert rec.modality.value == example["expected"], example["why"]
    assert rec.reasoning, "reasoning is empty"
    for step in rec.reasoning:
        assert step.sources, f"{step.rule} has no sources"
        assert all(c.source in knowledge.sources for c in step.sources)
    assert rec.ratings[rec.modality].category.value == "usually_appropriate"


def test_examples_span_the_catalogue(knowledge: KnowledgeBase) -> None:
    assert len(EXAMPLES) >= 24
    assert {e["case"].get("site") for _, e in EXAMPLES} >= set(knowledge.sites)
    assert {e["expected"] for _, e in EXAMPLES} == {m.value for m in Modality}
    variances = {v for _, e in EXAMPLES for v in e["case"].get("anatomy_variance", [])}
    assert variances == {v.value for v in Variance}
    assert all(e.get("why") for _, e in EXAMPLES)
