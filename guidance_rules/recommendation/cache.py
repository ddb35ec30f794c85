"""A small bounded LRU mapping, safe under threads, forks and signal handlers."""

from __future__ import annotations

from collections import OrderedDict
from contextlib import suppress
from typing import Generic, TypeVar

from guidance_rules._sync import ForkSafeLock

K = TypeVar("K")
V = TypeVar("V")


class LRU(Generic[K, V]):
    """Least recently used entries are dropped past `size` (0 keeps nothing).

    Each step is one atomic dict operation under a re-entrant lock, and no step assumes an
    earlier one's result still holds, so a signal handler that uses the same cache mid-way
    through an operation cannot corrupt it or make it raise."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._data: OrderedDict[K, V] = OrderedDict()
        self._lock = ForkSafeLock(reentrant=True)

    def get(self, key: K) -> V | None:
        """The value for `key`, or None; raises TypeError for an unhashable key."""
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                with suppress(KeyError):
                    self._data.move_to_end(key)
            return value

    def put(self, key: K, value: V) -> None:
        if self.size <= 0:
            return
        with self._lock:
            self._data[key] = value
            while len(self._data) > self.size:
                with suppress(KeyError):
                    self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def __len__(self) -> int:
        return len(self._data)


class Memo(dict[K, V]):
    """A bounded memo of exact results: emptied when full. Cheaper than `LRU` on the hot path (one
    dict lookup, atomic under the GIL); right for results that are cheap to recompute."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def put(self, key: K, value: V) -> None:
        if len(self) >= self.size:
            self.clear()
        self[key] = value
