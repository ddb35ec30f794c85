"""The durable-rules engine, wrapped so that none of its hazards reach a caller.

This is where rules are *fired*. durable-rules (2.0.28) is a Rete matcher in C with a
Python host layer. We use the C matcher (`durable_rules_engine`, shipped in the
durable-rules package) through a small dispatcher of our own instead of `durable.engine.Host`:

* `Host` starts two timer threads that walk a stale session index and segfault under
  threads or with several live sessions; no `Host` is created here, so no thread starts.
* `Host` runs each fired action through closures, timestamps and a JSON round trip of
  the session state (measured: about 37 µs per fired rule); our actions only record which
  rule fired (about 2 µs), which is all the stratified chaining needs.
* Exceptions inside `Host` actions are stored in the session and never raised; here any
  failure while dispatching is raised as `EngineError` after the session is removed.

Guards, each tested in `tests/engine/test_durable.py`:
* facts, never events (an event is consumed by the first matching rule);
* one live session at a time, shared by the evaluations that follow until it holds
  MAX_SESSION_FACTS facts, then deleted and replaced (facts carry their case number and a
  fact id unique in the session, every rule matches a single fact, and every fired action is
  drained before an evaluation returns, so cases cannot interact; starting a session costs
  durable a clear of every rule's state); a session an evaluation leaves in an unknown state
  (an exception) is deleted at once, so state stays bounded and the 1,024-live-sessions limit
  is never approached;
* one process-wide lock around every session, because the C engine is not thread-safe
  and never releases the GIL (threads gain nothing by running it at once). It is not
  re-entrant: a signal handler that calls in while its thread is inside the engine gets
  `EngineBusyError` instead of re-entering C code that would crash. It is held across
  `os.fork()` and renewed in the child, so a child never inherits it locked (`_sync`);
* a ruleset is deleted from the C engine when its `DurableEngine` is closed or collected,
  so discarded Recommenders do not leak (about 0.5 MB each).
"""

from __future__ import annotations

import contextlib
import importlib
import itertools
import json
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from guidance_rules._sync import EntryGuard
from guidance_rules.errors import EngineBusyError, EngineError, EngineUnavailableError

# Loaded here but reported on first use, so `import guidance_rules` works and the caller gets
# an EngineUnavailableError saying why and what to run instead of a bare ImportError.
_durable: Any = None
_load_error: ImportError | None = None
try:
    _durable = importlib.import_module("durable_rules_engine")
except ImportError as _error:
    _load_error = _error


def _busy() -> EngineBusyError:
    return EngineBusyError(
        "the rules engine is already running on this thread (was recommend() called from a signal "
        "handler or a rule hook?); call it again once the current evaluation has returned"
    )


# One lock for the whole process: the C engine keeps global tables shared by all rulesets.
ENGINE = EntryGuard(_busy, hold_across_fork=True)
ENGINE_LOCK = ENGINE.lock
_orphans: list[tuple[int, str | None]] = []  # rulesets (and live session) collected inside the engine


@contextmanager
def engine_entered() -> Iterator[None]:
    """Hold the engine lock; refuse (EngineBusyError), rather than deadlock or crash, a second
    entry by this thread, at any point of an evaluation (`EntryGuard`)."""
    ENGINE.enter()
    try:
        yield
    finally:
        _leave_engine()


def _leave_engine() -> None:
    """Free what was collected inside the engine, then release the lock (always)."""
    try:
        while _orphans:
            _free(*_orphans.pop())
    finally:
        ENGINE.leave()


def _delete_ruleset(handle: int, closed: list[bool], live: list[str | None]) -> None:
    """Remove a ruleset from the C engine (at `close()` or when its engine is collected), with
    its live session first: durable's delete_ruleset leaves a session's state allocated (about
    1 MiB each, measured)."""
    if closed[0]:
        return
    closed[0] = True
    if ENGINE.inside():  # collected mid-evaluation on this thread: delete on the way out
        _orphans.append((handle, live[0]))
        return
    with ENGINE.entered():
        _free(handle, live[0])


def _free(handle: int, sid: str | None) -> None:
    if sid is not None:
        with contextlib.suppress(_durable.error):
            _durable.delete_state(handle, sid)
    with contextlib.suppress(_durable.error):
        _durable.delete_ruleset(handle)


_OBSERVED = 2  # durable-rules: a fact with the same id hash was already asserted (1 is "not handled")
_ruleset_names = itertools.count(1)

# durable-rules files each fact of a session under the 32-bit FNV-1 hash of its id, and takes a
# second fact whose id hashes alike for one it already holds: "observed", and the fact is dropped.
# Without an id of ours, the id is a hash of the fact's content, so two distinct facts of one
# session collide at random (about 1 in 4,000 sessions of 1,500 facts: the audit met one). So every
# fact gets an id from a fixed table, and every session a sid from a fixed pool, whose hashes are all
# distinct (tests/engine/test_durable.py proves it), and no session may hold more facts than the table.
MAX_SESSION_FACTS = 16_384
SID_POOL = 64


FACT_ID_PREFIX = "f"


def fact_id(number: int) -> str:
    return f"{FACT_ID_PREFIX}{number}"


def sid_name(number: int) -> str:
    return f"e{number % SID_POOL}"


FireHook = Callable[[str], None]


@dataclass
class LiveSession:
    """The engine's record of its live session (a Session would hold the engine: a cycle)."""

    sid: str
    facts: int = 0
    touched: bool = False


class Session:
    """One evaluation's private session. Use only inside `DurableEngine.session()`."""

    def __init__(self, engine: DurableEngine, sid: str) -> None:
        self._engine = engine
        self.sid = sid
        self.touched = False
        self.facts = 0  # asserted so far: the next fact's id number

    def held(self) -> list[Any]:
        """The facts this session holds now (for tests and diagnostics)."""
        facts: list[Any] = json.loads(_durable.get_facts(self._engine.handle, self.sid))
        return facts

    def fire_many(self, stratum: int, facts: list[Mapping[str, Any]]) -> list[list[str]]:
        """`fire_parts` for a stratum compiled as one part tagged with its number."""
        return self.fire_parts(stratum, [(stratum, facts)])

    def fire_parts(self, stratum: int, parts: Sequence[tuple[int, Sequence[Mapping[str, Any]]]]) -> list[list[str]]:
        """`fire_encoded` for facts given as mappings (each encoded here with `json`)."""
        encode = json.JSONEncoder(separators=(",", ":")).encode
        try:
            encoded = [(tag, [encode(dict(fact))[1:-1] for fact in facts]) for tag, facts in parts]
        except (TypeError, ValueError) as error:
            raise EngineError(f"a fact of stratum {stratum} cannot be given to the engine: {error}") from error
        return self.fire_encoded(stratum, encoded)

    def fire_encoded(self, stratum: int, parts: Sequence[tuple[int, Sequence[str]]]) -> list[list[str]]:
        """Assert, in one call, one fact per case for each part (tag, facts) of `stratum`, each
        fact given as the JSON text of its members without braces (`engine.compile.FactEncoder`);
        return each case's fired rule ids, in firing order within each part.

        Every rule matches a single fact, so facts of different cases never interact; each
        carries its position as `case_no` (which also keeps identical cases distinct facts), and
        the tag of its part, so it meets only that part's rules (`engine.compile`).
        """
        cases = len(parts[0][1]) if parts else 0
        if not cases:
            return []
        first = self.facts
        total = cases * len(parts)
        if first + total > MAX_SESSION_FACTS:
            raise EngineError(f"a session may hold {MAX_SESSION_FACTS} facts; split the batch (asked for {first + total})")
        self.facts += total
        tail = f'"sid":"{self.sid}","id":"{FACT_ID_PREFIX}'
        payload = ",".join(
            f'{{"case_no":{i},{fact}{"," if fact else ""}{tail}{first + p * cases + i}","stratum":{tag}}}'
            for p, (tag, facts) in enumerate(parts)
            for i, fact in enumerate(facts)
        )
        return self._assert(stratum, cases, f"[{payload}]")

    def _assert(self, stratum: int, cases: int, payload: str) -> list[list[str]]:
        """Assert the facts of `payload` and drain every action they queued."""
        engine = self._engine
        handle = engine.handle
        fired: list[list[str]] = [[] for _ in range(cases)]
        self.touched = True
        try:
            code, state = _durable.assert_facts(handle, payload)
            # The code is that of the last fact asserted: "not handled" only says that one fact
            # matched no rule, so the actions queued for earlier facts must still be drained.
            if code == _OBSERVED:  # cannot happen with distinct id hashes: never let a fact drop silently
                raise EngineError(f"the engine took a fact of stratum {stratum} for one it already held")
            action = _durable.start_action_for_state(handle, state)
            message = action[1] if action else None
            rule_ids, on_fire, only = engine.rule_ids, engine.on_fire, fired[0] if cases == 1 else None
            complete = _durable.complete_and_start_action
            while message:
                try:
                    rule_id = message[2 : message.find('"', 2)]  # the message is {"RULE-ID":{"m":{...fact...}}}
                    if rule_id not in rule_ids:
                        rule_id = engine.rule_of(message)
                    (only if only is not None else fired[_case_no(message)]).append(rule_id)
                    if on_fire is not None:
                        on_fire(rule_id)
                except BaseException:
                    _durable.abandon_action(handle, state)
                    raise
                message = complete(handle, state)
            return fired
        except _durable.error as error:
            raise EngineError(f"durable-rules failed at stratum {stratum}: {error}") from error
        except EngineError:
            raise
        except Exception as error:
            raise EngineError(f"a rule action failed at stratum {stratum}: {error!r}") from error


def _case_no(message: str) -> int:
    """The `case_no` of the fact a fired-action message carries (the engine echoes the fact)."""
    start = message.index('"case_no":') + len('"case_no":')
    end = start
    while message[end] in " 0123456789":
        end += 1
    return int(message[start:end])


class SessionScope:
    """`DurableEngine.session()`: a class rather than a generator, as it runs on every evaluation.
    Entering takes the engine lock (`engine_entered`'s guard) and the live session; leaving
    records what the evaluation asserted, or after an error deletes the session, then frees any
    ruleset collected meanwhile and releases the lock."""

    __slots__ = ("_engine", "_facts", "_live", "_session")

    def __init__(self, engine: DurableEngine, facts: int) -> None:
        self._engine, self._facts = engine, facts

    def __enter__(self) -> Session:
        engine = self._engine
        ENGINE.enter()
        try:
            if engine._closed[0]:
                raise EngineError(f"this engine ({engine.name}) is closed; build a new Recommender")
            live = engine._live
            if live is None or live.facts + self._facts > MAX_SESSION_FACTS:
                engine._release()
                live = engine._live = LiveSession(sid_name(next(engine._sids)))
                engine._live_sid[0] = live.sid
            session = Session(engine, live.sid)  # the engine keeps only `live`, never a Session on itself
            session.facts, session.touched = live.facts, live.touched
        except BaseException:
            _leave_engine()
            raise
        self._live, self._session = live, session
        return session

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        engine, session = self._engine, self._session
        try:
            if kind is None:
                self._live.facts, self._live.touched = session.facts, session.touched
                return
            engine._live, engine._live_sid[0] = None, None
            if session.touched:  # clean up, but never hide the error that got us here
                with contextlib.suppress(_durable.error):
                    _durable.delete_state(engine.handle, session.sid)
        finally:
            _leave_engine()


class DurableEngine:
    """One compiled ruleset registered with the C engine."""

    def __init__(self, ruleset_json: str, rule_ids: set[str], on_fire: FireHook | None = None) -> None:
        if _load_error is not None:
            raise EngineUnavailableError(_load_error)
        self.rule_ids = frozenset(rule_ids)
        self.on_fire = on_fire
        self._sids = itertools.count(1)
        self._live: LiveSession | None = None  # kept between evaluations until it is full
        self.name = f"guidance_rules_{next(_ruleset_names)}"
        with engine_entered():
            try:
                self.handle: int = _durable.create_ruleset(self.name, ruleset_json)
            except _durable.error as error:
                raise EngineError(f"durable-rules rejected the compiled rule base: {error}") from error
        self._closed = [False]
        self._live_sid: list[str | None] = [None]  # the live session's sid once it holds state, for the finalizer
        self._finalizer = weakref.finalize(self, _delete_ruleset, self.handle, self._closed, self._live_sid)

    def rule_of(self, message: str) -> str:
        """The rule id of a fired-action message `{"RULE-ID":{"m":{...}}}`, without parsing the fact."""
        end = message.find('"', 2)
        candidate = message[2:end]
        if candidate in self.rule_ids:
            return candidate
        names = list(json.loads(message))
        if len(names) != 1 or names[0] not in self.rule_ids:
            raise EngineError(f"the engine fired an unknown action {names!r}")
        return str(names[0])

    def session(self, facts: int = 0) -> SessionScope:
        """Hold the engine lock for one evaluation that asserts up to `facts` facts, in the live
        session while it has room for them (creating and deleting a session costs about 20 µs
        per evaluation: durable clears state for every rule); a full session is deleted and a new
        one started. A session that an evaluation leaves in an unknown state is removed at once.
        Use as `with engine.session(n) as session:`."""
        return SessionScope(self, facts)

    def release(self) -> None:
        """Delete the live session now (the next evaluation starts a new one)."""
        with engine_entered():
            self._release()

    def _release(self) -> None:
        live, self._live, self._live_sid[0] = self._live, None, None
        if live is not None and live.touched:
            self._delete(live.sid)

    def _delete(self, sid: str) -> None:
        try:
            _durable.delete_state(self.handle, sid)
        except _durable.error as error:
            raise EngineError(f"could not remove engine session {sid}: {error}") from error

    def live_facts(self, sid: str) -> list[Any]:
        """Facts held for a session id (empty once it is removed); for tests and diagnostics."""
        with engine_entered():
            try:
                facts: list[Any] = json.loads(_durable.get_facts(self.handle, sid))
            except _durable.error:
                return []
            return facts

    def close(self) -> None:
        """Delete the ruleset from the C engine now (idempotent); later sessions raise EngineError."""
        self._finalizer()
