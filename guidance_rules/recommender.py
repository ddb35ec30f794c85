"""The entry point: validate, resolve, chain through the strata, choose, explain, cache.

`Recommender` ties one rule base to one compiled engine. `recommend()` uses a shared
Recommender over the shipped rule base. Both are safe to call from many threads.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .compile import Compiled, compile_rules, flatten
from .engine import DurableEngine, FireHook
from .explain import build
from .knowledge import KnowledgeBase, Rule, default_knowledge
from .model import Case, Modality, Recommendation
from .policy import RatingResult, rate, select
from .resolve import Resolution, resolve


@dataclass(frozen=True)
class Evaluation:
    """What the engine concluded for one resolved case, before it is dressed as output."""

    values: dict[str, Any]  # resolved case values plus every derived fact
    chain: list[Rule]  # derivation and rating rules that fired, in stratum order
    ratings: dict[Modality, RatingResult]
    modality: Modality
    outputs: list[Rule]

    @property
    def fired(self) -> list[str]:
        return [rule.id for rule in (*self.chain, *self.outputs)]


class Recommender:
    """Recommendations from one rule base. Thread-safe; answers are cached and read-only."""

    def __init__(self, knowledge: KnowledgeBase | None = None, *, cache_size: int = 8192, on_fire: FireHook | None = None):
        self.knowledge = knowledge or default_knowledge()
        self.compiled: Compiled = compile_rules(self.knowledge)
        self.engine = DurableEngine(self.compiled.ruleset_json, {r.id for r in self.knowledge.rules}, on_fire=on_fire)
        self._context = {"knowledge": self.knowledge}
        self._cached = functools.lru_cache(maxsize=cache_size)(self._recommend) if cache_size else self._recommend
        self._cached_json = functools.lru_cache(maxsize=cache_size)(self._json) if cache_size else self._json

    def case(self, data: Case | Mapping[str, Any]) -> Case:
        """Validate input against this rule base (its sites and constraints)."""
        if isinstance(data, Case) and data._resolution is not None and self.knowledge is default_knowledge():
            return data
        raw = data.model_dump(exclude_none=True) if isinstance(data, Case) else data
        return Case.model_validate(raw, context=self._context)

    def recommend(self, data: Case | Mapping[str, Any]) -> Recommendation:
        return self._cached(self.case(data))

    def recommend_json(self, data: Case | Mapping[str, Any]) -> str:
        """The Recommendation as compact JSON text (cached too: batch output is mostly this)."""
        return self._cached_json(self.case(data))

    def _json(self, case: Case) -> str:
        return self._cached(case).model_dump_json()

    def _recommend(self, case: Case) -> Recommendation:
        resolution: Resolution = case._resolution
        ev = self.evaluate(resolution.values)
        return build(self.knowledge, resolution, ev.values, ev.chain, ev.ratings, ev.modality, ev.outputs)

    def evaluate(self, resolved: Mapping[str, Any]) -> Evaluation:
        """Run the strata for fully resolved values (as `resolve` produces them)."""
        compiled, rule = self.compiled, self.knowledge.rule
        values = dict(resolved)
        values.update(dict.fromkeys(compiled.underived, False))
        chain: list[Rule] = []
        context = f" for case {_describe(resolved)}"
        with self.engine.session() as session:
            for stratum in compiled.derive:
                fired = sorted((rule(i) for i in session.fire(stratum.number, flatten(values, stratum.keys))), key=_order)
                chain.extend(fired)
                for fact in stratum.produces:
                    values[fact] = False
                for r in fired:
                    values[str(r.derive)] = True
            rated = sorted((rule(i) for i in session.fire(compiled.rate.number, flatten(values, compiled.rate.keys))), key=_order)
            chain.extend(rated)
            ratings = rate(rated, context)
            modality = select(self.knowledge, ratings, context)
            values["modality"] = modality.value
            out_ids = session.fire(compiled.output.number, flatten(values, compiled.output.keys))
        outputs = sorted((rule(i) for i in out_ids), key=_order)
        return Evaluation(values, chain, ratings, modality, outputs)

    def cache_clear(self) -> None:
        for cached in (self._cached, self._cached_json):
            if hasattr(cached, "cache_clear"):
                cached.cache_clear()


def _order(rule: Rule) -> int:
    return rule.index


def _describe(values: Mapping[str, Any]) -> str:
    return "{" + ", ".join(f"{k}={v}" for k, v in values.items() if v not in ("", ())) + "}"


_default: Recommender | None = None
_default_lock = threading.Lock()


def default_recommender() -> Recommender:
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = Recommender()
    return _default


def recommend(case: Case | Mapping[str, Any]) -> Recommendation:
    """Recommend imaging guidance for one case (a `Case` or a plain dict), with every reason.

    Invalid input raises `pydantic.ValidationError` naming the field; nothing is recommended.
    """
    return default_recommender().recommend(case)


__all__ = ["Evaluation", "Recommender", "default_recommender", "recommend", "resolve"]
