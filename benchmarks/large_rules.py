"""A rule base ten times the shipped one (issue 21, point 10): load, compile, answer, audit.

    .venv/bin/python -m benchmarks.large_rules            # shipped vs 10x; 5,400 rules refused
    .venv/bin/python -m benchmarks.large_rules --audit    # also the quick audit of both (minutes)

The synthetic rule base comes from `benchmarks.large_rulebase`. Each figure is printed for the
shipped rule base and the large one, measured in the same run, interleaved where it is a per-call
time, with the machine's load average, because this machine's speed drifts. Measurements, not
tests: nothing here fails on a slow machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.large_rulebase import write_large_rulebase
from benchmarks.run import valid_cases
from guidance_rules.audit.check import run_audit
from guidance_rules.engine.compile import compile_rules
from guidance_rules.errors import RuleFileError
from guidance_rules.recommendation.recommender import Recommender
from guidance_rules.rulebase.load import default_rules_dir, load


def load_note() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (5 min {five:.1f}) on {os.cpu_count()} cores"


def seconds(fn: object, repeat: int = 3) -> float:
    """Median wall time of `fn()` over `repeat` runs."""
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def per_call_us(folders: dict[str, Path], count: int) -> dict[str, float]:
    """Median µs of `recommend()` on distinct cases, uncached, both rule bases in alternating rounds."""
    cases = valid_cases(count)
    recommenders = {name: Recommender(load(folder), cache_size=0) for name, folder in folders.items()}
    samples: dict[str, list[float]] = {name: [] for name in folders}
    for rec in recommenders.values():
        for case in cases[:100]:
            rec.recommend(case)
    for start in range(0, len(cases), 50):  # rounds of 50 cases, alternating
        for name, rec in recommenders.items():
            for case in cases[start : start + 50]:
                begin = time.perf_counter()
                rec.recommend(case)
                samples[name].append((time.perf_counter() - begin) * 1e6)
    return {name: statistics.median(values) for name, values in samples.items()}


def refusal(folder: Path) -> str:
    start = time.perf_counter()
    try:
        load(folder, cache=False)
    except RuleFileError as error:
        return f"refused by the loader in {time.perf_counter() - start:.1f} s: {str(error)[:120]}..."
    return f"NOT refused ({time.perf_counter() - start:.1f} s)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--factor", type=int, default=10)
    parser.add_argument("--cases", type=int, default=2000)
    parser.add_argument("--audit", action="store_true", help="also time the quick audit of both (minutes)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folders = {"shipped": default_rules_dir(), f"{args.factor}x": write_large_rulebase(Path(tmp) / "large", args.factor)}
        huge = write_large_rulebase(Path(tmp) / "huge", 75)
        print(load_note())
        rows: dict[str, dict[str, str]] = {name: {} for name in folders}
        for name, folder in folders.items():
            kb = load(folder)
            compiled = compile_rules(kb)
            rows[name]["active rules"] = f"{len(kb.rules):,}"
            rows[name]["strata / engine parts"] = f"{len(compiled.strata)} / {compiled.parts}"
            rows[name]["load (parsed-data cache off)"] = f"{seconds(lambda f=folder: load(f, cache=False)):.2f} s"
            rows[name]["load (cache on)"] = f"{seconds(lambda f=folder: load(f)):.2f} s"
            rows[name]["compile (Python)"] = f"{seconds(lambda k=kb: compile_rules(k)) * 1e3:.0f} ms"
            rows[name]["compile + engine build"] = f"{seconds(lambda k=kb: Recommender(k).close()) * 1e3:.0f} ms"
        for name, us in per_call_us(folders, args.cases).items():
            rows[name]["recommend(), distinct case, median"] = f"{us:.0f} µs"
        if args.audit:
            for name, folder in folders.items():
                report = run_audit(folder, workers=2, quick=True)
                rows[name]["audit --quick, 2 workers"] = f"{report.seconds:.0f} s ({'passed' if report.passed else 'FAILED'})"
        names = list(folders)
        for label in rows[names[0]]:
            print(f"{label:<40}" + "".join(f"{rows[n].get(label, ''):>22}" for n in names))
        print(f"{'5,400 active rules':<40}{refusal(huge)}")
        print(load_note())


if __name__ == "__main__":
    main()
