"""The answer's own types: FrozenMap (a reasoning step's facts) and Ratings, tested directly
(mutation testing found them reached only through whole recommendations)."""

from __future__ import annotations

import pytest

from guidance_rules.model import Category, FrozenMap, Modality
from guidance_rules.model.answer import Rating, Ratings


def test_frozen_map_reads_like_a_mapping_and_names_a_missing_key() -> None:
    facts = FrozenMap({"depth": "deep", "palpable": False})
    assert (facts["depth"], len(facts), list(facts)) == ("deep", 2, ["depth", "palpable"])
    with pytest.raises(KeyError) as missing:
        facts["tissue"]
    assert missing.value.args == ("tissue",)


def test_frozen_map_equality_hash_and_repr() -> None:
    facts = FrozenMap({"depth": "deep"})
    assert facts == {"depth": "deep"} and facts == FrozenMap([("depth", "deep")]) and facts != FrozenMap({"depth": "superficial"})
    assert facts.__eq__(5) is NotImplemented and facts != 5  # not a mapping: never equal, never an error
    assert hash(facts) == hash(FrozenMap([("depth", "deep")]))
    assert len({hash(FrozenMap({"depth": d})) for d in ("deep", "superficial", "intermediate")}) == 3
    assert repr(facts) == "FrozenMap({'depth': 'deep'})"


def test_ratings_are_indexed_by_modality_or_its_name() -> None:
    rated = {m: Rating(category=Category.MAY_BE_APPROPRIATE, rules=(f"R-{m.value}",)) for m in Modality}
    ratings = Ratings(**{m.value: r for m, r in rated.items()})
    for modality in Modality:
        assert ratings[modality] is ratings[modality.value] is rated[modality]
    with pytest.raises(ValueError, match="sideways"):
        ratings["sideways"]
