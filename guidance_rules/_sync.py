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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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


class EntryGuard:
    """A non-reentrant `ForkSafeLock` that refuses, instead of deadlocking, a second entry by the
    thread already inside it: a signal handler runs on the thread it interrupts, so a handler that
    takes a lock its own thread holds would wait forever. `refuse()` makes the error raised.

    The thread's mark is set *before* the lock is taken, so a handler arriving at any point of
    `entered()` (even while the lock is being acquired) is refused."""

    def __init__(self, refuse: Callable[[], BaseException], *, hold_across_fork: bool = False) -> None:
        self.lock = ForkSafeLock(hold_across_fork=hold_across_fork)
        self._refuse = refuse
        self._inside = threading.local()

    def inside(self) -> bool:
        """Whether this thread is inside (or entering) the guarded section."""
        return bool(getattr(self._inside, "depth", 0))

    @contextmanager
    def entered(self) -> Iterator[None]:
        self.enter()
        try:
            yield
        finally:
            self.leave()

    def enter(self) -> None:
        """`entered()` as a call, for a context manager written as a class (a generator-based one
        costs about a microsecond per level); pair every successful call with `leave()`."""
        if self.inside():
            raise self._refuse()
        self._inside.depth = 1
        try:
            self.lock.acquire()
        except BaseException:
            self._inside.depth = 0
            raise

    def leave(self) -> None:
        try:
            self.lock.release()
        finally:
            self._inside.depth = 0


if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=ForkSafeLock._before_fork,
        after_in_parent=ForkSafeLock._after_fork_in_parent,
        after_in_child=ForkSafeLock._after_fork_in_child,
    )
