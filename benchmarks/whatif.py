"""Benchmarks for issue #13: what-if per case (target: median ≤ 50 ms), and optionally the
rule-change diff against the audit (target: no more than twice the audit's time).

    .venv/bin/python -m benchmarks.whatif                # what-if over 300 cases
    .venv/bin/python -m benchmarks.whatif --diff         # also time `diff` and `audit` (minutes)

Measurements, not tests: nothing here fails on a slow machine.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

from guidance_rules import Recommender
from guidance_rules.recommendation import whatif as whatif_module
from guidance_rules.recommendation.whatif import inputs_that_matter, what_if

from .run import ROOT, valid_cases


def _describe(samples_ms: list[float]) -> str:
    q = statistics.quantiles(samples_ms, n=10)
    return (
        f"median {statistics.median(samples_ms):.1f} ms (p10 {q[0]:.1f}, p90 {q[-1]:.1f}, max {max(samples_ms):.1f}, n={len(samples_ms)})"
    )


def bench_what_if(count: int) -> None:
    rec = Recommender()
    cases = valid_cases(count, seed=13)
    cold, warm, inputs, evaluated = [], [], [], []
    for case in cases:
        whatif_module._memo(rec).clear()  # no help from earlier what-ifs: each case from scratch
        start = time.perf_counter()
        result = what_if(case, rec)
        cold.append((time.perf_counter() - start) * 1000)
        evaluated.append(result.cases_evaluated)
        start = time.perf_counter()  # the same case again: its neighbours are remembered
        what_if(case, rec)
        warm.append((time.perf_counter() - start) * 1000)
    for case in cases:
        whatif_module._memo(rec).clear()
        start = time.perf_counter()
        inputs_that_matter(case, rec)
        inputs.append((time.perf_counter() - start) * 1000)
    print(f"what_if (max 3 changes), each case from scratch: {_describe(cold)}")
    print(f"  neighbouring cases evaluated per case: median {statistics.median(evaluated):.0f}, max {max(evaluated)}")
    print(f"what_if, case seen before:                   {_describe(warm)}")
    print(f"inputs_that_matter alone, from scratch:      {_describe(inputs)}")
    few = cases[:20]
    exhaustive = []
    for case in few:
        whatif_module._memo(rec).clear()
        start = time.perf_counter()
        what_if(case, rec, max_changes=None)
        exhaustive.append((time.perf_counter() - start) * 1000)
    print(f"what_if without a bound (exhaustive):         {_describe(exhaustive)}")


def bench_diff() -> None:
    exe = str(ROOT / ".venv" / "bin" / "guidance-rules")
    rules = str(ROOT / "rules")
    for label, argv in (("audit", [exe, "audit"]), ("diff rules rules", [exe, "diff", rules, rules])):
        start = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, check=False)
        print(f"{label:<18} {time.perf_counter() - start:6.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--diff", action="store_true", help="also time diff against the audit (about two minutes)")
    args = parser.parse_args()
    print(f"Python {sys.version.split()[0]}")
    bench_what_if(args.count)
    if args.diff:
        bench_diff()


if __name__ == "__main__":
    main()
