"""Measures one anchor in this (fresh) process and prints one JSON line.

    python benchmarks/anchors/bench.py eng_durable [--reps 3]     # or: python -m benchmarks.anchors.bench ...

The anchor is first checked against the plain if/else floor on all 6,336 cases (which also warms it).
Then: the median and p90 of single timed calls (`us_per_call_p50`, `us_per_call_p90`; compare a median
per call with a median per call) and, per rep, the mean of a timed loop over all cases
(`us_per_case_median` is the median of those means; a loop mean carries the tails).
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.anchors import eng_hand
from benchmarks.anchors.decision import cases

ENGINES = ("eng_hand", "eng_pydantic", "eng_durable")


def _rss_mib() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def measure(engine: str, reps: int) -> dict[str, Any]:
    space = cases()
    expected = [eng_hand.evaluate(c) for c in space]
    start = time.perf_counter()
    evaluate = importlib.import_module(f"benchmarks.anchors.{engine}").make()
    setup_s = time.perf_counter() - start
    wrong = [i for i, c in enumerate(space) if evaluate(c) != expected[i]]
    calls = []
    for case in space:
        start = time.perf_counter()
        evaluate(case)
        calls.append(time.perf_counter() - start)
    calls.sort()
    loop_means = []
    for _ in range(reps):
        gc.collect()
        start = time.perf_counter()
        for case in space:
            evaluate(case)
        loop_means.append((time.perf_counter() - start) / len(space) * 1e6)
    return {
        "engine": engine,
        "cases": len(space),
        "mismatches": len(wrong),
        "first_mismatch": [space[wrong[0]], expected[wrong[0]], evaluate(space[wrong[0]])] if wrong else None,
        "us_per_call_p50": round(calls[len(calls) // 2] * 1e6, 3),
        "us_per_call_p90": round(calls[int(len(calls) * 0.9)] * 1e6, 3),
        "us_per_case_reps": [round(x, 3) for x in loop_means],
        "us_per_case_median": round(statistics.median(loop_means), 3) if loop_means else None,
        "setup_s": round(setup_s, 4),
        "rss_end_mib": round(_rss_mib(), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("engine", choices=ENGINES)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    result = measure(args.engine, args.reps)
    print(json.dumps(result))
    if result["mismatches"]:
        sys.exit(f"{args.engine} disagrees with the floor on {result['mismatches']} cases")


if __name__ == "__main__":
    main()
