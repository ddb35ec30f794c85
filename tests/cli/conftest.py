"""Fixtures for every command-line test."""

from __future__ import annotations

import threading

import pytest


@pytest.fixture(autouse=True)
def _bars_lock_in_this_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """tqdm's default lock is a multiprocessing lock, shared with every process forked after it:
    a mutation run's test process killed while drawing a bar left it held, and every later one
    hung. A thread lock (and no monitor thread) keeps each forked test process to its own."""
    from tqdm import tqdm

    monkeypatch.setattr(tqdm, "_lock", threading.RLock(), raising=False)
    monkeypatch.setattr(tqdm, "monitor_interval", 0)
