"""Locks that survive `os.fork()`.

A child process inherits every lock in the state it was in at the fork; a lock another thread
held is held forever in the child, and the child deadlocks the first time it recommends.
`ForkSafeLock`s are renewed in every child. The engine's lock is also *acquired* before a fork
(`hold_across_fork=True`), so the C engine is never copied half way through an evaluation.
"""

from __future__ import annotations

import os
import threading
import weakref
from types import TracebackType
from typing import ClassVar


class ForkSafeLock:
    """A `threading.Lock` (or `RLock`) renewed in a forked child."""

    _instances: ClassVar[weakref.WeakSet[ForkSafeLock]] = weakref.WeakSet()
    _held_across_fork: ClassVar[list[ForkSafeLock]] = []

    def __init__(self, *, reentrant: bool = False, hold_across_fork: bool = False) -> None:
        self._reentrant = reentrant
        self._lock = self._new()
        ForkSafeLock._instances.add(self)
        if hold_across_fork:
            ForkSafeLock._held_across_fork.append(self)

    def _new(self) -> threading.Lock | threading.RLock:
        return threading.RLock() if self._reentrant else threading.Lock()

    def acquire(self, blocking: bool = True) -> bool:
        return self._lock.acquire(blocking)

    def release(self) -> None:
        self._lock.release()

    def __enter__(self) -> bool:
        return self._lock.acquire()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self._lock.release()

    @classmethod
    def _before_fork(cls) -> None:
        for lock in cls._held_across_fork:
            lock._lock.acquire()

    @classmethod
    def _after_fork_in_parent(cls) -> None:
        for lock in reversed(cls._held_across_fork):
            lock._lock.release()

    @classmethod
    def _after_fork_in_child(cls) -> None:
        for lock in list(cls._instances):
            lock._lock = lock._new()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=ForkSafeLock._before_fork,
        after_in_parent=ForkSafeLock._after_fork_in_parent,
        after_in_child=ForkSafeLock._after_fork_in_child,
    )
