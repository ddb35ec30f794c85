"""The entry point: validate, resolve, chain through the strata, choose, explain, cache.

`Recommender` ties one rule base to one compiled engine. `recommend()` uses a shared
Recommender over the shipped rule base. Both are safe to call from many threads.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Mapping
from typing import Any

from .compile import Compiled, Stratum, compile_rules, flatten
from .engine import DurableEngine, FireHook, Session
from .errors import EngineError
from .explain import Evaluation, Parts
from .knowledge import KnowledgeBase, Rule, default_knowledge
from .model import Case, Modality, Recommendation
from .policy import RatingResult, rate, select

MEMO_LIMIT = 65_536  # entries per stratum; the memo is cleared when full


class Recommender:
    """Recommendations from one rule base. Thread-safe; answers are cached and read-only."""

    def __init__(self, knowledge: KnowledgeBase | None = None, *, cache_size: int = 8192, on_fire: FireHook | None = None):
        self.knowledge = knowledge or default_knowledge()
        self.compiled: Compiled = compile_rules(self.knowledge)
        self.engine = DurableEngine(self.compiled.ruleset_json, {r.id for r in self.knowledge.rules}, on_fire=on_fire)
        self._context = {"knowledge": self.knowledge}
        self._by_id = {rule.id: rule for rule in self.knowledge.rules}
        self._parts = Parts(self.knowledge)
        # Strata after the first read only a few keys (stratum 2: six booleans), so their result
        # is memoised by exact input: durable fires each distinct input once. Bounded; exact.
        self._memo: dict[int, dict[tuple[Any, ...], tuple[Rule, ...]]] = {s.number: {} for s in self.compiled.strata[1:]}
        self._choices: dict[tuple[Rule, ...], tuple[dict[Modality, RatingResult], Modality]] = {}
        self._cached: Callable[[Case], Recommendation] = self._recommend
        self._cached_json: Callable[[Case], str] = self._json
        if cache_size:
            self._cached = functools.lru_cache(maxsize=cache_size)(self._recommend)
            self._cached_json = functools.lru_cache(maxsize=cache_size)(self._json)

    def case(self, data: Case | Mapping[str, Any]) -> Case:
        """Validate input against this rule base (its sites and constraints); a Case already
        resolved against a rule base with this digest is used as it is."""
        if isinstance(data, Case):
            private = data.__pydantic_private__  # a plain attribute: cheaper than `data._resolution`
            resolution = private.get("_resolution") if private else None
            if resolution is not None and resolution.digest == self.knowledge.digest:
                return data
        raw = {k: v for k, v in data.__dict__.items() if v is not None} if isinstance(data, Case) else data
        return Case.model_validate(raw, context=self._context)

    def recommend(self, data: Case | Mapping[str, Any]) -> Recommendation:
        return self._cached(self.case(data))

    def recommend_json(self, data: Case | Mapping[str, Any]) -> str:
        """The Recommendation as compact JSON text (cached too: batch output is mostly this)."""
        return self._cached_json(self.case(data))

    def recommend_many(self, cases: list[Case]) -> list[Recommendation | EngineError]:
        """Answers for many validated cases, evaluated in one engine session (not cached here)."""
        cases = [self.case(c) for c in cases]
        evaluations = self.evaluate_many([c._resolution.values for c in cases])
        return [
            ev if isinstance(ev, EngineError) else self._parts.build(c._resolution, ev) for c, ev in zip(cases, evaluations, strict=True)
        ]

    def _json(self, case: Case) -> str:
        return self._cached(case).model_dump_json()

    def _recommend(self, case: Case) -> Recommendation:
        return self._parts.build(case._resolution, self.evaluate(case._resolution.values))

    def _fire(self, session: Session, stratum: Stratum, batch: list[dict[str, Any]]) -> list[tuple[Rule, ...]]:
        """Fire one stratum for every case in the batch; strata after the first are memoised."""
        facts = [flatten(values, stratum.keys) for values in batch]
        memo = self._memo.get(stratum.number)
        keys = [tuple(fact.values()) for fact in facts] if memo is not None else []
        out: list[tuple[Rule, ...] | None] = [None] * len(facts)
        missing: list[int] = []
        for i in range(len(facts)):
            found = memo.get(keys[i]) if memo is not None else None
            if found is None:
                missing.append(i)
            else:
                out[i] = found
        fired_ids = session.fire_many(stratum.number, [facts[i] for i in missing])
        for i, ids in zip(missing, fired_ids, strict=True):
            fired = tuple(sorted((self._by_id[r] for r in ids), key=_order))
            out[i] = fired
            if memo is not None:
                if len(memo) >= MEMO_LIMIT:
                    memo.clear()
                memo[keys[i]] = fired
        return out  # type: ignore[return-value]

    def evaluate(self, resolved: Mapping[str, Any]) -> Evaluation:
        """Run the strata for fully resolved values (as `resolve` produces them)."""
        (result,) = self.evaluate_many([resolved])
        if isinstance(result, EngineError):
            raise result
        return result

    def evaluate_many(self, batch: list[Mapping[str, Any]]) -> list[Evaluation | EngineError]:
        """Evaluate many resolved cases in one engine session (durable's session start is most of
        its per-case cost). A case the rule base cannot answer gets its EngineError in its place."""
        compiled = self.compiled
        states = [{**resolved, **dict.fromkeys(compiled.underived, False)} for resolved in batch]
        chains: list[list[Rule]] = [[] for _ in batch]
        results: list[Evaluation | EngineError | None] = [None] * len(batch)
        with self.engine.session() as session:
            for stratum in compiled.derive:
                for i, fired in enumerate(self._fire(session, stratum, states)):
                    chains[i].extend(fired)
                    state = states[i]
                    for fact in stratum.produces:  # a fact may be derived in several strata: never reset one already true
                        state.setdefault(fact, False)
                    state.update({str(r.derive): True for r in fired})
            live: list[int] = []
            choices: dict[int, tuple[dict[Modality, RatingResult], Modality]] = {}
            for i, rated in enumerate(self._fire(session, compiled.rate, states)):
                chains[i].extend(rated)
                try:
                    choices[i] = self._choose(rated, batch[i])
                except EngineError as error:
                    results[i] = error
                    continue
                states[i]["modality"] = choices[i][1].value
                live.append(i)
            for i, outputs in zip(live, self._fire(session, compiled.output, [states[i] for i in live]), strict=True):
                ratings, modality = choices[i]
                results[i] = Evaluation(states[i], chains[i], ratings, modality, list(outputs))
        return results  # type: ignore[return-value]

    def _choose(self, rated: tuple[Rule, ...], resolved: Mapping[str, Any]) -> tuple[dict[Modality, RatingResult], Modality]:
        """Ratings and modality from the fired rating rules (a pure function of them, so memoised)."""
        found = self._choices.get(rated)
        if found is None:
            try:
                ratings = rate(rated)
                found = ratings, select(self.knowledge, ratings)
            except EngineError as error:
                raise EngineError(f"{error} (case {_describe(resolved)})") from None
            if len(self._choices) >= MEMO_LIMIT:
                self._choices.clear()
            self._choices[rated] = found
        return found

    def cache_clear(self) -> None:
        for cached in (self._cached, self._cached_json):
            clear = getattr(cached, "cache_clear", None)
            if clear is not None:
                clear()
        for memo in self._memo.values():
            memo.clear()
        self._choices.clear()


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
