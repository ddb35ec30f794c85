"""Worker processes for work over many cases: the audit, the rule-change diff and batch.

One helper starts the pool (a clean interpreter per worker, Ctrl-C left to the parent) and keeps
this process's Recommender per rule base, built once and keyed by the rule base's folder and
digest, so a job names its rule base instead of carrying it, and a worker whose rule files
changed since the work was planned refuses instead of answering from other rules.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import signal
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.pool import Pool

from guidance_rules.errors import RuleFileError
from guidance_rules.recommendation.recommender import Recommender
from guidance_rules.rulebase.load import load

KEEP = 4  # rule bases kept per process (the diff uses two at once); the oldest is dropped past this


@dataclass(frozen=True)
class RuleBase:
    """A rule base as a job names it: its folder (resolved) and the digest the parent loaded."""

    directory: str
    digest: str
    cache_size: int = 0  # answers its Recommender keeps (0: none; the audit and diff use the engine directly)


_recommenders: OrderedDict[RuleBase, Recommender] = OrderedDict()


def worker_recommender(base: RuleBase) -> Recommender:
    """This process's Recommender for `base`, built on first use; RuleFileError if the folder's
    rule files no longer have the digest the parent saw."""
    found = _recommenders.get(base)
    if found is not None:
        _recommenders.move_to_end(base)
        return found
    knowledge = load(base.directory)
    if knowledge.digest != base.digest:
        raise RuleFileError(
            base.directory,
            f"the rule files changed while the work ran: digest {knowledge.digest[:19]}, not {base.digest[:19]} as planned; run it again",
        )
    found = _recommenders[base] = Recommender(knowledge, cache_size=base.cache_size)
    while len(_recommenders) > KEEP:
        _recommenders.popitem(last=False)
    return found


def forget() -> None:
    """Drop this process's Recommenders (tests that patch the engine start from none)."""
    _recommenders.clear()


def _start(bases: Sequence[RuleBase]) -> None:
    """Ignore Ctrl-C (the parent handles it and stops the pool); build each base's Recommender
    while the other workers build theirs. A base that fails to build is left to the first job
    that needs it, which raises its error in the parent (an initializer that raised would only
    be restarted by the pool, again and again)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for base in bases:
        with contextlib.suppress(Exception):
            worker_recommender(base)


@contextmanager
def worker_pool(workers: int, bases: Sequence[RuleBase]) -> Iterator[Pool]:
    """`workers` processes, each with a Recommender for every base built as it starts. Spawned,
    not forked: a clean interpreter inherits no threads, locks or engine state. Left by an
    exception (or Ctrl-C in the parent), the pool is terminated; otherwise it is closed and joined."""
    pool = multiprocessing.get_context("spawn").Pool(workers, initializer=_start, initargs=(tuple(bases),))
    try:
        yield pool
        pool.close()
    finally:
        pool.terminate()
        pool.join()
