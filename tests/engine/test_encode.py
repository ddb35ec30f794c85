"""Facts given to the engine as text joined from fragments made at compile time (issue 22): the
text must be what `json` makes of the flattened fact, and the memo keys must decide exactly."""

from __future__ import annotations

import json
from typing import Any

import pytest

from guidance_rules.engine.compile import FactEncoder, compile_rules, flatten
from guidance_rules.errors import EngineError
from guidance_rules.recommendation.recommender import Recommender
from guidance_rules.rulebase.domain import KnowledgeBase
from guidance_rules.rulebase.space import free_space, site_space


def _states(recommender: Recommender, count: int) -> list[dict[str, Any]]:
    """Resolved values (with every derived fact and a modality) of cases spread over both spaces."""
    out = []
    for space in (free_space(), site_space(recommender.knowledge)):
        for index in range(0, space.size, max(1, space.size // count)):
            try:
                values = recommender.resolve(space.case(index)).values
            except ValueError:
                continue
            evaluation = recommender.evaluate(values)
            out.append(dict(evaluation.values))
    return out


def test_encoded_facts_are_the_json_of_the_flattened_facts(knowledge: KnowledgeBase) -> None:
    recommender = Recommender(knowledge, cache_size=0)
    compiled = compile_rules(knowledge)
    states = _states(recommender, 300)
    assert len(states) > 300
    for stratum in compiled.strata:
        for part in stratum.parts:
            for values in states:
                text = part.encode(values)
                assert text == json.dumps(flatten(values, part.keys), separators=(",", ":"))[1:-1]
                assert part.encode(values) == text  # again, from the fragments kept the first time


def test_a_value_outside_the_vocabulary_is_encoded_as_json_says() -> None:
    encode = FactEncoder(("anatomy_variance__obesity", "depth", "palpable", "site"))
    values = {"anatomy_variance": ("obesity",), "depth": 'd\u00e9ep "x"', "palpable": 1, "site": 2.5}
    assert encode(values) == json.dumps(flatten(values, encode.keys), separators=(",", ":"))[1:-1]


def test_a_value_json_cannot_hold_is_an_engine_error() -> None:
    with pytest.raises(EngineError, match="site"):
        FactEncoder(("site",))({"site": object()})
