"""The caches tested as caches (issue 24): an LRU that evicted the newest entry passed every test, and
a policy-step cache keyed without the ratings was caught only because pool workers happened to see
cases in another order. Eviction order, refresh on read, size 0, and keys that hold every input."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from guidance_rules.engine.policy import RatingResult
from guidance_rules.model import Case, Category, Modality
from guidance_rules.recommendation.cache import LRU, Memo
from guidance_rules.recommendation.recommender import Recommender
from guidance_rules.rulebase.conditions import CASE_FIELDS
from guidance_rules.rulebase.load import default_knowledge

KB = default_knowledge()


def test_lru_evicts_the_least_recently_used_first() -> None:
    lru: LRU[str, int] = LRU(2)
    lru.put("a", 1)
    lru.put("b", 2)
    lru.put("c", 3)
    assert (lru.get("a"), lru.get("b"), lru.get("c"), len(lru)) == (None, 2, 3, 2)


def test_lru_read_refreshes_an_entry() -> None:
    lru: LRU[str, int] = LRU(2)
    lru.put("a", 1)
    lru.put("b", 2)
    assert lru.get("a") == 1  # now b is the least recently used
    lru.put("c", 3)
    assert (lru.get("a"), lru.get("b"), lru.get("c")) == (1, None, 3)


def test_lru_of_size_0_keeps_nothing() -> None:
    lru: LRU[str, int] = LRU(0)
    lru.put("a", 1)
    assert (lru.get("a"), len(lru)) == (None, 0)


def test_lru_clear_and_unhashable_key() -> None:
    lru: LRU[Any, int] = LRU(3)
    lru.put("a", 1)
    lru.clear()
    assert (lru.get("a"), len(lru)) == (None, 0)
    with pytest.raises(TypeError):
        lru.get(["not", "hashable"])


def test_memo_is_emptied_when_full_and_then_keeps_the_new_entry() -> None:
    memo: Memo[str, int] = Memo(2)
    memo.put("a", 1)
    memo.put("b", 2)
    assert dict(memo) == {"a": 1, "b": 2}
    memo.put("c", 3)
    assert dict(memo) == {"c": 3}


def test_the_case_key_holds_every_field_and_its_type() -> None:
    base = Case(injectate="corticosteroid")
    changed = {
        "site": "knee",
        "region": "spinal",
        "depth": "deep",
        "tissue": "bursa",
        "target_size": "small",
        "palpable": True,
        "injectate": "prp",
        "anatomy_variance": ["obesity"],
        "near_neurovascular": True,
        "precise_plane": True,
        "compartment_specific": True,
        "bone_obscures_path": True,
        "contrast_confirmation": True,
        "available_modalities": ["ultrasound"],
        "approach": "superolateral",
    }
    assert set(changed) == set(Case.model_fields)  # a field added to Case must be added here
    keys = {Case(**{"injectate": "corticosteroid", name: value}).key() for name, value in changed.items()}
    assert len(keys | {base.key()}) == len(changed) + 1
    assert Case(injectate="prp", palpable=True).key() != Case.model_construct(injectate="prp", palpable=1).key()


def test_the_policy_step_is_keyed_by_every_rating_it_shows() -> None:
    """Two evaluations with the same modality but another rating must not share a policy step."""
    rec = Recommender(KB, cache_size=0)
    resolution = rec.resolve({"site": "hip", "injectate": "corticosteroid"})
    evaluation = rec.evaluate(resolution.values)
    first = rec._parts.build(resolution, evaluation)
    for other in Modality:
        if other is evaluation.modality:
            continue
        was = evaluation.ratings[other].category
        category = next(c for c in Category if c is not was)
        ratings = {**evaluation.ratings, other: RatingResult(category, evaluation.ratings[other].rules)}
        second = rec._parts.build(resolution, dataclasses.replace(evaluation, ratings=ratings))
        assert second.reasoning[-1].facts[other.value] == category.value != first.reasoning[-1].facts[other.value]
        assert first.reasoning[-1].facts[other.value] == was.value  # the first answer's step is untouched


def one_field_changes() -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Pairs of cases that differ in one field, over a few sites and every enumerated value."""
    pairs = []
    for site in ("hip", "knee", "lumbar_facet", "a1_pulley"):
        base: dict[str, Any] = {"site": site, "injectate": "corticosteroid"}
        for field in (
            "injectate",
            "target_size",
            "palpable",
            "near_neurovascular",
            "precise_plane",
            "compartment_specific",
            "bone_obscures_path",
            "contrast_confirmation",
            "depth",
            "tissue",
        ):
            for value in CASE_FIELDS[field].values:
                pairs.append((base, {**base, field: value}))
        for variance in CASE_FIELDS["anatomy_variance"].values:
            pairs.append((base, {**base, "anatomy_variance": [variance]}))
    return pairs


def test_a_warm_recommender_answers_each_case_as_a_cold_one() -> None:
    """Every cache key must hold every input its value depends on: answering a case right after one
    that differs in a single field (so every cache and memo is warm with the neighbour) gives the
    answer a recommender with every cache emptied gives."""
    warm, cold = Recommender(KB), Recommender(KB, cache_size=0)
    checked = 0
    for before, case in one_field_changes():
        try:
            warm.recommend_json(before)
            got = warm.recommend_json(case)
        except ValueError:
            continue  # a contradiction for this site
        cold.cache_clear()
        assert got == cold.recommend_json(case), (before, case)
        checked += 1
    assert checked >= 100  # 107 of the pairs are valid cases today


def test_lru_of_size_1_keeps_one_entry() -> None:
    lru: LRU[str, int] = LRU(1)
    lru.put("a", 1)
    assert lru.get("a") == 1
    lru.put("b", 2)
    assert (lru.get("a"), lru.get("b"), len(lru)) == (None, 2, 1)


def test_lru_lock_is_reentrant() -> None:
    """A signal handler may use the cache while its own thread holds the lock: a plain lock would
    deadlock there. Checked in a thread so a regression fails instead of hanging the suite."""
    import threading

    lru: LRU[str, int] = LRU(2)
    done = threading.Event()

    def nested() -> None:
        with lru._lock:
            lru.put("a", 1)
            if lru.get("a") == 1:
                done.set()

    worker = threading.Thread(target=nested, daemon=True)
    worker.start()
    worker.join(timeout=5)
    assert done.is_set()


def test_lru_survives_an_entry_removed_between_its_steps() -> None:
    """As when a signal handler empties the cache mid-operation: the key is gone by the time the
    read refreshes it, or the oldest entry is gone by the time put evicts it. Neither raises."""
    from collections import OrderedDict

    class Vanishing(OrderedDict[str, int]):
        raised = 0

        def move_to_end(self, key: str, last: bool = True) -> None:
            self.raised += 1
            raise KeyError(key)

        def popitem(self, last: bool = True) -> tuple[str, int]:
            if not self.raised:
                self.raised += 1
                raise KeyError("gone")
            return super().popitem(last)

    lru: LRU[str, int] = LRU(1)
    lru._data = Vanishing()
    lru.put("a", 1)
    lru.put("b", 2)  # the first eviction finds nothing to pop; the loop evicts on its next turn
    assert (lru.get("b"), len(lru)) == (2, 1)  # the refresh finds the key gone
