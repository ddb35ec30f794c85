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
* one session id per evaluation (or per batch of evaluations, for the audit and batch
  commands: facts carry their case number and every rule matches a single fact, so cases
  cannot interact; session start is ~55 µs of durable's ~85 µs per case), deleted in a
  `finally`, so state never grows and the 1,024-live-sessions limit is never approached;
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
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
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
_orphans: list[int] = []  # rulesets collected while their thread was inside the engine


@contextmanager
def engine_entered() -> Iterator[None]:
    """Hold the engine lock; refuse (EngineBusyError), rather than deadlock or crash, a second
    entry by this thread, at any point of an evaluation (`EntryGuard`)."""
    with ENGINE.entered():
        try:
            yield
        finally:
            while _orphans:
                with contextlib.suppress(_durable.error):
                    _durable.delete_ruleset(_orphans.pop())


def _delete_ruleset(handle: int, closed: list[bool]) -> None:
    """Remove a ruleset from the C engine (at `close()` or when its engine is collected)."""
    if closed[0]:
        return
    closed[0] = True
    if ENGINE.inside():  # collected mid-evaluation on this thread: delete on the way out
        _orphans.append(handle)
        return
    with ENGINE.entered(), contextlib.suppress(_durable.error):
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


def fact_id(number: int) -> str:
    return f"f{number}"


def sid_name(number: int) -> str:
    return f"e{number % SID_POOL}"


FireHook = Callable[[str], None]


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
        """Assert one fact per case for `stratum` in one call; return each case's fired rule ids
        in firing order.

        Every rule matches a single fact, so facts of different cases never interact; each
        carries its position as `case_no` (which also keeps identical cases distinct facts).
        """
        if not facts:
            return []
        handle = self._engine.handle
        first = self.facts
        if first + len(facts) > MAX_SESSION_FACTS:
            raise EngineError(f"a session may hold {MAX_SESSION_FACTS} facts; split the batch (asked for {first + len(facts)})")
        self.facts += len(facts)
        payload = [{"case_no": i, **fact, "sid": self.sid, "id": fact_id(first + i), "stratum": stratum} for i, fact in enumerate(facts)]
        fired: list[list[str]] = [[] for _ in facts]
        self.touched = True
        try:
            code, state = _durable.assert_facts(handle, json.dumps(payload, separators=(",", ":")))
            # The code is that of the last fact asserted: "not handled" only says that one fact
            # matched no rule, so the actions queued for earlier facts must still be drained.
            if code == _OBSERVED:  # cannot happen with distinct id hashes: never let a fact drop silently
                raise EngineError(f"the engine took a fact of stratum {stratum} for one it already held")
            action = _durable.start_action_for_state(handle, state)
            message = action[1] if action else None
            while message:
                try:
                    rule_id = self._engine.rule_of(message)
                    fired[_case_no(message)].append(rule_id)
                    if self._engine.on_fire is not None:
                        self._engine.on_fire(rule_id)
                except BaseException:
                    _durable.abandon_action(handle, state)
                    raise
                message = _durable.complete_and_start_action(handle, state)
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


class DurableEngine:
    """One compiled ruleset registered with the C engine."""

    def __init__(self, ruleset_json: str, rule_ids: set[str], on_fire: FireHook | None = None) -> None:
        if _load_error is not None:
            raise EngineUnavailableError(_load_error)
        self.rule_ids = frozenset(rule_ids)
        self.on_fire = on_fire
        self._sids = itertools.count(1)
        self.name = f"guidance_rules_{next(_ruleset_names)}"
        with engine_entered():
            try:
                self.handle: int = _durable.create_ruleset(self.name, ruleset_json)
            except _durable.error as error:
                raise EngineError(f"durable-rules rejected the compiled rule base: {error}") from error
        self._closed = [False]
        self._finalizer = weakref.finalize(self, _delete_ruleset, self.handle, self._closed)

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

    @contextmanager
    def session(self) -> Iterator[Session]:
        """Hold the engine lock for one evaluation; remove its session however it ends."""
        with engine_entered():
            if self._closed[0]:
                raise EngineError(f"this engine ({self.name}) is closed; build a new Recommender")
            session = Session(self, sid_name(next(self._sids)))
            try:
                yield session
            except BaseException:
                if session.touched:  # clean up, but never hide the error that got us here
                    with contextlib.suppress(_durable.error):
                        _durable.delete_state(self.handle, session.sid)
                raise
            if session.touched:
                self._delete(session.sid)

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
