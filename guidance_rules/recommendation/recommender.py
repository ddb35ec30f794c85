"""The entry point: validate, resolve, chain through the strata, choose, explain, cache.

`Recommender` ties one rule base to one compiled engine. `recommend()` uses a shared
Recommender over the shipped rule base. Both are safe to call from many threads.

Every answer is computed from a case validated here: a `Case` is plain data and can be
altered without validation (`model_copy(update=...)`, `model_construct`), so the cache is keyed
by the case's value and types, a key is stored only for a case that validated and resolved,
and anything else is validated again from its fields.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from enum import Enum
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from pydantic import ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from guidance_rules._sync import EntryGuard, ForkSafeLock
from guidance_rules.engine.compile import Compiled, Stratum, compile_rules
from guidance_rules.engine.durable import MAX_SESSION_FACTS, DurableEngine, FireHook, Session
from guidance_rules.engine.policy import RatingResult, rate, select
from guidance_rules.errors import CaseError, EngineBusyError, EngineError, RuleFileError
from guidance_rules.model import Case, Modality, Recommendation
from guidance_rules.model.case import LIST_FIELDS
from guidance_rules.recommendation.cache import LRU, Memo
from guidance_rules.recommendation.explain import Evaluation, Parts, values_of
from guidance_rules.rulebase.conditions import check_resolved
from guidance_rules.rulebase.domain import KnowledgeBase, Rule
from guidance_rules.rulebase.load import default_knowledge, default_rules_dir, load
from guidance_rules.rulebase.resolve import Resolution, resolve

T = TypeVar("T")
MEMO_LIMIT = 65_536  # entries per stratum memo; emptied when full (exact: a miss only recomputes)


class Recommender:
    """Recommendations from one rule base. Thread-safe; answers are cached and read-only.

    Close it (or use it as a context manager) to free its engine at once; otherwise the engine
    is freed when the Recommender is garbage-collected."""

    def __init__(self, knowledge: KnowledgeBase | None = None, *, cache_size: int = 8192, on_fire: FireHook | None = None):
        self.knowledge = knowledge or default_knowledge()
        self.compiled: Compiled = compile_rules(self.knowledge)
        self.engine = DurableEngine(self.compiled.ruleset_json, {r.id for r in self.knowledge.rules}, on_fire=on_fire)
        self._by_id = {rule.id: rule for rule in self.knowledge.rules}
        self._parts = Parts(self.knowledge)
        # Strata after the first read only a few keys (stratum 2: six booleans), so their result
        # is memoised by exact input: durable fires each distinct input once. Bounded; exact.
        self._memo: dict[int, Memo[tuple[Any, ...], tuple[Rule, ...]]] = {s.number: Memo(MEMO_LIMIT) for s in self.compiled.strata[1:]}
        self._keys = {s.number: values_of(s.fields) for s in self.compiled.strata[1:]}
        self._choices: Memo[tuple[Rule, ...], tuple[dict[Modality, RatingResult], Modality]] = Memo(MEMO_LIMIT)
        self._answers: LRU[tuple[Any, ...], Recommendation] = LRU(cache_size)
        self._json: LRU[tuple[Any, ...], str] = LRU(cache_size)

    # -- input ---------------------------------------------------------------------------------

    def validate(self, data: Case | Mapping[str, Any]) -> Case:
        """A Case validated from its fields (a Case is validated again: it may have been altered)."""
        if isinstance(data, Case):
            data = {name: value for name, value in data.__dict__.items() if value is not None}
        return Case.model_validate(data)

    def resolve(self, data: Case | Mapping[str, Any]) -> Resolution:
        """Validate, then fill in every absent value from this rule base and reject contradictions;
        a case invalid against the rule base raises `ValidationError` located at its fields."""
        case = self.validate(data)
        return self._resolve(case)

    def _resolve(self, case: Case) -> Resolution:
        try:
            return resolve(case, self.knowledge)
        except CaseError as error:
            raise invalid_case(error, case) from None

    def _cached(self, cache: LRU[tuple[Any, ...], Any], data: Case | Mapping[str, Any]) -> tuple[Any, Case | None, tuple[Any, ...]]:
        """(answer, None, key) when cached; else (None, validated case, its key)."""
        if isinstance(data, Case):
            try:
                key = data.key()
                found = cache.get(key)
            except TypeError:  # an unhashable value: it never validated
                found = None
            if found is not None:
                return found, None, key
        case = self.validate(data)
        key = case.key()
        return cache.get(key), case, key

    # -- answers -------------------------------------------------------------------------------

    def recommend(self, data: Case | Mapping[str, Any]) -> Recommendation:
        found, case, key = self._cached(self._answers, data)
        if found is not None:
            return found  # type: ignore[no-any-return]
        assert case is not None
        return self._answer(case, key)

    def recommend_json(self, data: Case | Mapping[str, Any]) -> str:
        """The Recommendation as compact JSON text (cached too: batch output is mostly this)."""
        found, case, key = self._cached(self._json, data)
        if found is not None:
            return found  # type: ignore[no-any-return]
        assert case is not None
        text = self._parts.json(self._answers.get(key) or self._answer(case, key))
        self._json.put(key, text)
        return text

    def _answer(self, case: Case, key: tuple[Any, ...]) -> Recommendation:
        """Resolve, evaluate and explain a validated case, and keep the answer under its key."""
        resolution = self._resolve(case)
        answer = self._parts.build(resolution, self.evaluate(resolution.values))
        self._answers.put(key, answer)
        return answer

    def recommend_many(self, cases: Sequence[Case | Mapping[str, Any]]) -> list[Recommendation | ValidationError | EngineError]:
        """Answers for many cases, evaluated in one engine session; each case that is invalid or
        that the rule base cannot answer gets its error in its place. Answers are cached."""
        return self._many(cases, self._answers, lambda answer: answer)

    def recommend_many_json(self, cases: Sequence[Case | Mapping[str, Any]]) -> list[str | ValidationError | EngineError]:
        """`recommend_many`, each answer as compact JSON text (cached too: batch output is mostly this)."""
        return self._many(cases, self._json, self._parts.json)

    def _many(
        self, cases: Sequence[Case | Mapping[str, Any]], cache: LRU[tuple[Any, ...], T], dress: Callable[[Recommendation], T]
    ) -> list[T | ValidationError | EngineError]:
        out: list[T | ValidationError | EngineError | None] = [None] * len(cases)
        todo: list[tuple[int, tuple[Any, ...], Resolution | Recommendation]] = []
        for i, data in enumerate(cases):
            try:
                found, case, key = self._cached(cache, data)
                if found is not None:
                    out[i] = found
                    continue
                assert case is not None
                answer = self._answers.get(key) if cache is not self._answers else None
                todo.append((i, key, answer if answer is not None else self._resolve(case)))
            except ValidationError as error:
                out[i] = error
        pending = [(i, key, r) for i, key, r in todo if isinstance(r, Resolution)]
        evaluations = iter(self.evaluate_many([r.values for _, _, r in pending]))
        for i, key, known in todo:
            if isinstance(known, Resolution):
                evaluation = next(evaluations)
                if isinstance(evaluation, EngineError):
                    out[i] = evaluation
                    continue
                known = self._parts.build(known, evaluation)
                self._answers.put(key, known)
            out[i] = dressed = dress(known)
            cache.put(key, dressed)
        return out  # type: ignore[return-value]

    def _fire(self, session: Session, stratum: Stratum, batch: list[dict[str, Any]]) -> list[tuple[Rule, ...]]:
        """Fire one stratum for every case in the batch; strata after the first are memoised by the
        values of the fields their rules read (those values decide what fires, so a hit is exact)."""
        memo = self._memo.get(stratum.number)
        if memo is None:
            keys: list[tuple[Any, ...]] = []
            out: list[tuple[Rule, ...] | None] = [None] * len(batch)
            missing = list(range(len(batch)))
        else:
            key_of = self._keys[stratum.number]
            keys = [key_of(values) for values in batch]
            out = [memo.get(key) for key in keys]
            missing = [i for i, found in enumerate(out) if found is None]
            if not missing:
                return out  # type: ignore[return-value]
        parts = [(part.tag, [part.encode(batch[i]) for i in missing]) for part in stratum.parts]
        by_id = self._by_id
        for i, ids in zip(missing, session.fire_encoded(stratum.number, parts), strict=True):
            # A rule testing "list includes any of" fires once per matching value: one step each.
            fired = tuple(sorted({by_id[r] for r in ids}, key=_order)) if len(ids) > 1 else tuple(by_id[r] for r in ids)
            out[i] = fired
            if memo is not None:
                memo.put(keys[i], fired)
        return out  # type: ignore[return-value]

    def evaluate(self, resolved: Mapping[str, Any]) -> Evaluation:
        """Run the strata for fully resolved values (as `resolve` produces them)."""
        (result,) = self.evaluate_many([resolved])
        if isinstance(result, EngineError):
            raise result
        return result

    def evaluate_many(self, batch: list[Mapping[str, Any]]) -> list[Evaluation | EngineError]:
        """Evaluate many resolved cases, a session of the engine per `session_cases` of them
        (durable's session start is most of its per-case cost). A case the rule base cannot
        answer gets its EngineError in its place; values the rules cannot test raise CaseError
        naming the field before the engine sees any of them."""
        for resolved in batch:
            check_resolved(resolved)
        size = self.session_cases
        if len(batch) <= size:
            return self._evaluate_session(batch)
        out: list[Evaluation | EngineError] = []
        for start in range(0, len(batch), size):
            out.extend(self._evaluate_session(batch[start : start + size]))
        return out

    @property
    def session_cases(self) -> int:
        """Cases one engine session may take: each asserts one fact per part of every stratum."""
        return max(1, MAX_SESSION_FACTS // self.compiled.parts)

    def _evaluate_session(self, batch: list[Mapping[str, Any]]) -> list[Evaluation | EngineError]:
        compiled = self.compiled
        underived = dict.fromkeys(compiled.underived, False)
        states = [{**resolved, **underived} for resolved in batch]
        for state in states:  # a list value (allowed by `check_resolved`) as a tuple, so it can key a memo
            for name in LIST_FIELDS:
                if state.get(name).__class__ is list:
                    state[name] = tuple(state[name])
        chains: list[list[Rule]] = [[] for _ in batch]
        results: list[Evaluation | EngineError | None] = [None] * len(batch)
        with self.engine.session(len(batch) * compiled.parts) as session:
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
            self._choices.put(rated, found)
        return found

    def cache_clear(self) -> None:
        caches: list[LRU[Any, Any] | Memo[Any, Any]] = [self._answers, self._json, self._choices, *self._memo.values()]
        for cache in caches:
            cache.clear()

    def close(self) -> None:
        """Free the engine's ruleset now; later evaluations raise EngineError (cached answers stay)."""
        self.engine.close()

    def __enter__(self) -> Recommender:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def __reduce__(self) -> tuple[Callable[[str | None, str], Recommender], tuple[str | None, str]]:
        """Pickled as its rule base's directory and digest: the engine (a C object with locks)
        cannot cross processes, so the receiving process uses its own Recommender for the same
        rule base (`process_recommender`), built once per process and refused if its files differ.
        The shipped rule base is named as such: a worker's package may be installed elsewhere."""
        if self.engine.on_fire is not None:
            raise TypeError(
                "a Recommender with an on_fire hook cannot be pickled: the hook is a function of this process; build one in each process"
            )
        directory = self.knowledge.directory
        shipped = directory.resolve() == default_rules_dir().resolve()
        return process_recommender, (None if shipped else str(directory), self.knowledge.digest)


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


def invalid_case(error: CaseError, case: Case) -> ValidationError:
    """A rule-base error as pydantic's ValidationError, with one entry per field involved."""
    details: list[InitErrorDetails] = [
        {
            "type": PydanticCustomError(error.kind, "{message}", {"message": str(error)}),
            "loc": (name,),
            "input": _plain(getattr(case, name, None)),
        }
        for name in error.fields
    ]
    return ValidationError.from_exception_data("Case", details)


def _order(rule: Rule) -> int:
    return rule.index


def _describe(values: Mapping[str, Any]) -> str:
    return "{" + ", ".join(f"{k}={v}" for k, v in values.items() if v not in ("", ())) + "}"


def _building() -> EngineBusyError:
    return EngineBusyError(
        "the shared recommender is still being built on this thread (was recommend() called from a "
        "signal handler during the process's first recommend()?); call it again once that call has returned"
    )


_default: Recommender | None = None
_default_guard = EntryGuard(_building)


def default_recommender() -> Recommender:
    """The shared Recommender over the shipped rule base, built on first use. A second entry by the
    thread building it (a signal handler) raises EngineBusyError instead of waiting for itself."""
    global _default
    if _default is None:
        with _default_guard.entered():
            if _default is None:
                _default = Recommender()
    return _default


def recommend(case: Case | Mapping[str, Any]) -> Recommendation:
    """Recommend imaging guidance for one case (a `Case` or a plain dict), with every reason.

    Invalid input raises `pydantic.ValidationError` naming the field; nothing is recommended.
    """
    return default_recommender().recommend(case)


_by_digest: dict[str, Recommender] = {}
_by_digest_lock = ForkSafeLock(reentrant=True)


def process_recommender(rules: str | Path | None = None, digest: str | None = None, *, cache_dir: str | Path | None = None) -> Recommender:
    """This process's Recommender for a rule base, built once and kept by the rule base's digest:
    what each worker of Spark, Dask or Ray needs (and what an unpickled Recommender is).

    `rules` is the rule directory (default: the shipped rule base). With `digest` (the ruleset
    digest the driver saw), a worker whose rule files differ raises RuleFileError instead of
    answering from other rules. `cache_dir` sets where this process keeps parsed rule bases
    (`GUIDANCE_RULES_CACHE_DIR`, for executors whose home directory is not writable)."""
    if cache_dir is not None:
        os.environ["GUIDANCE_RULES_CACHE_DIR"] = str(cache_dir)
    if digest is not None and (found := _by_digest.get(digest)) is not None:
        return found
    with _by_digest_lock:
        knowledge = default_knowledge() if rules is None else load(rules)
        if digest is not None and knowledge.digest != digest:
            raise RuleFileError(
                str(knowledge.directory),
                f"the rule base here has digest {knowledge.digest[:12]}, not {digest[:12]} as where the work was planned; "
                "install the same rule files on every worker",
            )
        found = _by_digest.get(knowledge.digest)
        if found is None:
            found = _by_digest[knowledge.digest] = Recommender(knowledge)
        return found
