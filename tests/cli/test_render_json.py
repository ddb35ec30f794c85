"""`recommend --json` prints the Recommendation JSON exactly as pydantic writes it
(`model_dump_json(indent=2)`), though the command writes it without pydantic's serializer (whose
first use builds the answer's whole schema, a large part of a one-shot command's start-up)."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from guidance_rules.cli.render import json_text
from guidance_rules.model import Recommendation
from guidance_rules.recommendation.recommender import Recommender
from guidance_rules.rulebase.conditions import BOOL_FIELDS, CASE_FIELDS

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def recommender() -> Recommender:
    return Recommender()


def _cases(count: int) -> list[dict[str, Any]]:
    """The shipped examples and `count` random cases over every field (some invalid, skipped)."""
    examples = [json.loads(path.read_text(encoding="utf-8")) for path in sorted((ROOT / "examples").glob("*.json"))]
    cases = [example.get("case", example) for example in examples]
    rng = random.Random(22)
    sites = [*Recommender().knowledge.sites]
    for _ in range(count):
        case: dict[str, Any] = {"site": rng.choice(sites), "injectate": rng.choice(CASE_FIELDS["injectate"].values)}
        case.update({name: rng.random() < 0.5 for name in BOOL_FIELDS if rng.random() < 0.3})
        for name in ("anatomy_variance", "available_modalities"):
            values = list(CASE_FIELDS[name].values)
            if rng.random() < 0.3:
                case[name] = rng.sample(values, rng.randint(1, len(values)))
        for name in ("depth", "tissue", "region", "target_size", "approach"):
            if rng.random() < 0.1:
                case[name] = rng.choice(CASE_FIELDS[name].values)
        cases.append(case)
    return cases


def test_answers_are_written_byte_for_byte_as_pydantic_writes_them(recommender: Recommender) -> None:
    answered = 0
    for case in _cases(400):
        try:
            rec = recommender.recommend(case)
        except ValueError:  # a contradictory or invalid case: nothing to write
            continue
        answered += 1
        assert json_text(rec) == rec.model_dump_json(indent=2), case
    assert answered > 200


def _altered(rec: Recommendation, **assumption: Any) -> Recommendation:
    """The answer with its first assumption's value (and origin) replaced, validated as a caller's would be."""
    data = rec.model_dump()
    data["assumptions"] = [{"field": "tissue", "value": "joint", "origin": "site", **assumption}]
    return Recommendation.model_validate(data)


@pytest.mark.parametrize(
    "value",
    [
        'quote " backslash \\ tab \t newline \n nul \x00 unit \x1f del \x7f',
        "non-ASCII é ß 😀 and the line separator \u2028",
        ["obesity", "effusion"],
        {"nested": [1, True, None, "x"]},
        2**70,
        None,
    ],
)
def test_every_kind_of_text_and_value_is_written_as_pydantic_writes_it(recommender: Recommender, value: Any) -> None:
    rec = _altered(recommender.recommend({"site": "hip", "injectate": "prp"}), value=value, origin=f"origin {value!r}")
    assert json_text(rec) == rec.model_dump_json(indent=2)


@pytest.mark.parametrize("value", [float("inf"), 1e16, 0.1, {1: "a whole-number key"}])
def test_a_value_it_does_not_write_itself_is_left_to_pydantic(recommender: Recommender, value: Any) -> None:
    """Python's json writes infinity as `Infinity` where pydantic writes `null`: a float (or a
    key that is not text) is never written by the command's own writer."""
    rec = _altered(recommender.recommend({"site": "hip", "injectate": "prp"}), value=value)
    assert json_text(rec) == rec.model_dump_json(indent=2)
