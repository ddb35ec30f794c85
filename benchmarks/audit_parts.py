"""Where the audit's time goes, per valid case (issue 22, target 3): the CPU time of each part of
what a worker does for a case, measured over a slice of each space in this one process.

The parts, each over the whole slice and each from the state the one before left (as in the
audit): enumerating the cases, `resolve` (the contradictory ones dropped), the engine
(`Recommender.evaluate_many`, every stratum), the answer's own checks with its explanation
(`Checker.problems`), the invariants (`Checker.covered`); then `evaluate_chunk` over the same
slice from a fresh Recommender and Checker, whose total less the parts is the per-case
bookkeeping (codes, marks, the heat map, samples): small, and within the noise on a loaded
machine (it can come out negative). CPU time, not wall: less noisy on a shared
machine, and the audit's workers are CPU-bound.

    .venv/bin/python -m benchmarks.audit_parts [--cases 20000]

A measurement, not a test: nothing here fails on a slow machine.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from typing import Any

from guidance_rules.audit import check
from guidance_rules.recommendation import pool
from guidance_rules.recommendation.pool import RuleBase
from guidance_rules.rulebase.load import default_rules_dir, load
from guidance_rules.rulebase.space import Space, audit_spaces


def _fresh(base: RuleBase) -> check.Checker:
    pool.forget()
    check._checkers.clear()
    return check._checker(base)


def _parts(base: RuleBase, space: Space, stop: int) -> tuple[int, dict[str, float]]:
    """(valid cases, CPU seconds by part) over cases [0, stop) of the space."""
    checker = _fresh(base)
    seconds: dict[str, float] = {}

    def timed(part: str, work: Callable[[], Any]) -> Any:
        started = time.process_time()
        out = work()
        seconds[part] = time.process_time() - started
        return out

    cases = timed("enumerate", lambda: list(space.cases(0, stop)))
    resolved = timed("resolve", lambda: [v for v in (check._resolved(checker.rec, c) for c in cases) if v is not None])
    evaluations = timed("engine", lambda: checker.rec.evaluate_many(resolved))
    timed("answer checks", lambda: [checker.problems(ev) for ev in evaluations])
    timed("invariants", lambda: [checker.covered(ev) for ev in evaluations])
    _fresh(base)
    total = timed("evaluate_chunk", lambda: check.evaluate_chunk(base, space, 0, stop))
    assert sum(code < len(check.MODALITIES) for code in total.modality) == len(resolved)
    return len(resolved), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=20_000, help="cases from the start of each space (default 20,000)")
    args = parser.parse_args()
    directory = default_rules_dir().resolve()
    knowledge = load(directory)
    base = RuleBase(str(directory), knowledge.digest)
    for space in audit_spaces(knowledge):
        before = os.getloadavg()[0]
        valid, seconds = _parts(base, space, min(args.cases, space.size))
        parts = {k: v for k, v in seconds.items() if k != "evaluate_chunk"}
        per = {k: f"{v / valid * 1e6:.0f}" for k, v in parts.items()}
        rest = (seconds["evaluate_chunk"] - sum(parts.values())) / valid * 1e6
        print(
            f"{space.name}: {valid:,} valid cases; µs CPU per valid case: {per}, remainder {rest:.0f}; "
            f"evaluate_chunk {seconds['evaluate_chunk'] / valid * 1e6:.0f} (load average {before:.1f}-{os.getloadavg()[0]:.1f})"
        )


if __name__ == "__main__":
    main()
