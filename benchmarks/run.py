"""Benchmarks for the figures in issues #5 and #15. Prints a table; `--json FILE` also saves it.

    .venv/bin/python -m benchmarks.run            # the full run (about 10 minutes on 2 quiet cores)
    .venv/bin/python -m benchmarks.run --quick    # smaller counts, same measurements
    .venv/bin/python -m benchmarks.run --suite    # also time `sh scripts/test.sh` (several minutes)

Where a figure has an anchor (benchmarks/anchors: durable-rules on a 12-rule decision; a minimal
pydantic program), the anchor is measured in the same run and the ratio printed, because this
machine's absolute speed drifts.

These are measurements, not tests: nothing here fails on a slow machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from guidance_rules import Case, Recommender
from guidance_rules.errors import CaseError
from guidance_rules.rulebase.load import default_knowledge
from guidance_rules.rulebase.resolve import resolve
from guidance_rules.rulebase.space import as_json_case, free_space, site_space

ROOT = Path(__file__).resolve().parent.parent


def rss_kib() -> int:
    """Current resident set size (not the peak), from /proc."""
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)


def valid_cases(count: int, seed: int = 7) -> list[dict[str, Any]]:
    """Distinct valid cases drawn uniformly from both audited spaces."""
    kb = default_knowledge()
    rng = random.Random(seed)
    spaces = [free_space(), site_space(kb)]
    out: list[dict[str, Any]] = []
    seen: set[tuple[str, int]] = set()
    while len(out) < count:
        space = spaces[0] if rng.random() < 0.8 else spaces[1]
        index = rng.randrange(space.size)
        if (space.name, index) in seen:
            continue
        seen.add((space.name, index))
        case = space.case(index)
        try:
            resolve(case, kb)
        except CaseError:
            continue
        out.append(as_json_case(case))
    return out


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return samples


def describe(samples_us: list[float]) -> str:
    q = statistics.quantiles(samples_us, n=10)
    return f"median {statistics.median(samples_us):.1f} µs (p10 {q[0]:.1f}, p90 {q[-1]:.1f}, n={len(samples_us):,})"


def bench_distinct(cases: list[dict[str, Any]], rounds: int = 5) -> tuple[str, float, str]:
    """Distinct cases, uncached, our median per call beside the durable-rules anchor's median per
    call (not its loop mean, which carries its tails), measured in alternating rounds: a round of
    our cases, then one run of the anchor in a fresh process, and so on, with the load noted."""
    rec = Recommender(cache_size=0)
    parsed = [Case.model_validate(c) for c in cases]
    for case in parsed[:200]:  # warm the per-stratum memo, as a running service has it
        rec.recommend(case)
    ours: list[float] = []
    theirs: list[float] = []
    ratios: list[float] = []
    loads = [os.getloadavg()[0]]
    size = -(-len(cases) // rounds)
    for start in range(0, len(cases), size):
        round_us = [t * 1e6 for c in cases[start : start + size] for t in timed(lambda c=c: rec.recommend(c), 1)]
        ours.extend(round_us)
        anchor = anchor_per_call()
        loads.append(os.getloadavg()[0])
        if isinstance(anchor, str):
            return describe(ours), statistics.median(ours), anchor
        theirs.append(anchor)
        ratios.append(statistics.median(round_us) / anchor)
    ratio = statistics.median(ours) / statistics.median(theirs)
    versus = (
        f"{ratio:.2f}x: our median {statistics.median(ours):.0f} µs per call vs the anchor's median "
        f"{statistics.median(theirs):.0f} µs per call ({len(theirs)} alternating rounds, ratio per round "
        f"{min(ratios):.2f}-{max(ratios):.2f}; load average {min(loads):.1f}-{max(loads):.1f} on {os.cpu_count()} cores)"
    )
    return describe(ours), statistics.median(ours), versus


def bench_seen(cases: list[dict[str, Any]]) -> tuple[str, str]:
    rec = Recommender()
    parsed = [Case.model_validate(c) for c in cases[:500]]
    for case in parsed:
        rec.recommend(case)
    case_us = [t * 1e6 for _ in range(20) for c in parsed for t in timed(lambda c=c: rec.recommend(c), 1)]
    dict_us = [t * 1e6 for _ in range(4) for c in cases[:500] for t in timed(lambda c=c: rec.recommend(c), 1)]
    return describe(case_us), describe(dict_us)


def bench_cli(repeat: int) -> str:
    command = [sys.executable, "-m", "guidance_rules", "recommend", "--site", "hip", "--injectate", "cell_based", "--json"]
    subprocess.run(command, capture_output=True, check=True, cwd=ROOT)
    ms = [t * 1e3 for t in timed(lambda: subprocess.run(command, capture_output=True, check=True, cwd=ROOT), repeat)]
    bare = [t * 1e3 for t in timed(lambda: subprocess.run([sys.executable, "-c", "pass"], check=True), repeat)]
    return f"median {statistics.median(ms):.0f} ms (min {min(ms):.0f}, max {max(ms):.0f}; bare python {statistics.median(bare):.0f} ms)"


ANCHORS = ROOT / "benchmarks" / "anchors"


def _process_ms(command: list[str]) -> tuple[float, float]:
    """One whole run of `command`: (wall ms, CPU ms of the child, user + system)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, capture_output=True, check=True, cwd=ROOT)
    wall = (time.perf_counter() - start) * 1e3
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) * 1e3


def bench_cli_ratio(repeat: int) -> str:
    """Whole-process `guidance-rules recommend` against a minimal pydantic program, same venv,
    interleaved so a drift of the machine's speed touches both alike. The wall ratio is the
    target's; on a loaded machine a wall time is mostly waiting for a core, so the ratio of the
    CPU times the two processes used is printed beside it."""
    ours = [sys.executable, "-m", "guidance_rules", "recommend", "--site", "hip", "--injectate", "cell_based", "--json"]
    minimal = [sys.executable, str(ANCHORS / "minimal_pydantic.py")]
    # As installed: pip writes bytecode at install; a checkout under PYTHONDONTWRITEBYTECODE (this
    # machine sets it) would compile every module changed since setup on every start.
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "guidance_rules")], capture_output=True, check=False)
    for command in (ours, minimal):
        _process_ms(command)
    a: list[tuple[float, float]] = []
    b: list[tuple[float, float]] = []
    loads = [os.getloadavg()[0]]
    for _ in range(repeat):
        a.append(_process_ms(ours))
        b.append(_process_ms(minimal))
        loads.append(os.getloadavg()[0])
    wall_a, wall_b = statistics.median(w for w, _ in a), statistics.median(w for w, _ in b)
    cpu_a, cpu_b = statistics.median(c for _, c in a), statistics.median(c for _, c in b)
    return (
        f"{wall_a / wall_b:.2f}x: median {wall_a:.0f} ms vs minimal pydantic program {wall_b:.0f} ms; CPU {cpu_a / cpu_b:.2f}x "
        f"({cpu_a:.0f} vs {cpu_b:.0f} ms) ({repeat} interleaved rounds; load average {min(loads):.1f}-{max(loads):.1f} "
        f"on {os.cpu_count()} cores)"
    )


def anchor_per_call() -> float | str:
    """One run of the durable-rules anchor (one fact per case into a fresh session, 12 rules) in a
    fresh process: the median µs of its single calls, or why it was not measured."""
    if not (ANCHORS / "bench.py").exists():
        return f"not measured: {ANCHORS / 'bench.py'} is missing"
    done = subprocess.run([sys.executable, str(ANCHORS / "bench.py"), "eng_durable", "--reps", "1"], capture_output=True, text=True)
    if done.returncode != 0:
        return f"not measured: the anchor failed ({done.stderr.strip()[-200:]})"
    return float(json.loads(done.stdout.strip().splitlines()[-1])["us_per_call_p50"])


def bench_audit() -> str:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "guidance_rules", "audit", "--json"], capture_output=True, text=True, cwd=ROOT)
    seconds = time.perf_counter() - start
    summary = json.loads(done.stdout)
    valid = sum(c["valid"] for c in summary["cases"].values())
    return f"{seconds:.1f} s wall ({valid:,} valid cases, {summary['workers']} workers, exit {done.returncode})"


def bench_suite() -> str:
    start = time.perf_counter()
    done = subprocess.run(["sh", "scripts/test.sh"], capture_output=True, text=True, cwd=ROOT)
    tail = [line for line in done.stdout.splitlines() if " passed" in line]
    return f"{time.perf_counter() - start:.0f} s ({tail[-1].strip() if tail else 'no summary'}; exit {done.returncode})"


def bench_batch(cases: list[dict[str, Any]], lines: int) -> tuple[str, str]:
    """Whole `guidance-rules batch` processes (2 workers, as on this machine's 2 cores): every line
    a new case, then a historical mix; the CPU the process and its workers used per case and the
    load average are printed beside the rate (on a loaded machine the rate is mostly waiting)."""
    rng = random.Random(11)
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        mix = [rng.choice(cases[:2000]) for _ in range(100_000)]  # 2,000 distinct cases, repeated as history is
        for label, chosen in (("all distinct", cases[:lines]), ("historical mix", mix)):
            source = Path(tmp) / "in.jsonl"
            source.write_text("".join(json.dumps(c) + "\n" for c in chosen))
            load = os.getloadavg()[0]
            seconds, cpu_ms = _process_seconds(
                [sys.executable, "-m", "guidance_rules", "batch", str(source), "--out", os.devnull, "--workers", "2"]
            )
            out.append(
                f"{len(chosen) / seconds:,.0f} cases/s ({label}, {len(chosen):,} lines, whole process, 2 workers; "
                f"CPU {cpu_ms * 1e3 / len(chosen):.0f} µs per case over all processes; load average {load:.1f}-{os.getloadavg()[0]:.1f} "
                f"on {os.cpu_count()} cores)"
            )
    return out[0], out[1]


def _process_seconds(command: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU ms of the process and every child it waited for)."""
    wall, cpu = _process_ms(command)
    return wall / 1e3, cpu


def bench_memory(cases: list[dict[str, Any]], evaluations: int) -> str:
    rec = Recommender(cache_size=0)
    parsed = [Case.model_validate(c) for c in cases]
    for case in parsed:
        rec.recommend(case)
    start_rss = rss_kib()
    readings = []
    for i in range(evaluations):
        rec.recommend(parsed[i % len(parsed)])
        if i % (evaluations // 10) == 0:
            readings.append(rss_kib())
    growth = (rss_kib() - start_rss) / 1024
    return (
        f"{growth:+.2f} MiB over {evaluations:,} evaluations (RSS {start_rss / 1024:.1f} MiB at start; samples "
        + ", ".join(f"{r / 1024:.1f}" for r in readings)
        + ")"
    )


def bench_threads(cases: list[dict[str, Any]], threads: int, per_thread: int) -> str:
    oracle = Recommender(cache_size=0)
    parsed = [Case.model_validate(c) for c in cases]
    expected = [oracle.recommend_json(c) for c in parsed]
    shared = Recommender(cache_size=0)
    differing = [0]
    errors: list[str] = []

    def work(offset: int) -> None:
        try:
            for i in range(per_thread):
                k = (i * 7 + offset) % len(parsed)
                if shared.recommend_json(parsed[k]) != expected[k]:
                    differing[0] += 1
        except Exception as error:  # a crash of the engine would surface here (or kill the process)
            errors.append(repr(error))

    start = time.perf_counter()
    pool = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    seconds = time.perf_counter() - start
    return (
        f"{threads} threads x {per_thread:,}: {len(errors)} errors, {differing[0]} results differing from single-threaded, "
        f"{threads * per_thread / seconds:,.0f} evaluations/s overall"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller counts")
    parser.add_argument("--json", type=Path, help="also save the figures here")
    parser.add_argument("--suite", action="store_true", help="also time the whole test command")
    args = parser.parse_args()
    scale = 0.1 if args.quick else 1.0
    cases = valid_cases(int(100_000 * max(scale, 0.2)))
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.platform()}"
    rows: list[tuple[str, str, str]] = []

    def row(name: str, target: str, figure: str) -> None:
        rows.append((name, target, figure))
        print(f"{name:<42} {target:<26} {figure}", flush=True)

    print(f"machine: {machine}\n")
    print(f"{'figure':<42} {'target':<26} measured")
    distinct, _, versus = bench_distinct(cases[: int(20_000 * max(scale, 0.25))])
    row("recommend, distinct case, full output", "≤ 100 µs median", distinct)
    row("  ... against durable-rules (anchor)", "≤ 1.0x, median vs median", versus)
    seen_case, seen_dict = bench_seen(cases)
    row("recommend, case seen before (Case)", "≤ 5 µs", seen_case)
    row("recommend, case seen before (dict)", "", seen_dict)
    row("guidance-rules recommend, whole process", "≤ 250 ms", bench_cli(int(20 * max(scale, 0.5))))
    row("  ... against a minimal pydantic program", "≤ 1.15x", bench_cli_ratio(int(20 * max(scale, 0.5))))
    row("full audit (guidance-rules audit)", "≤ 15 s", bench_audit())
    distinct_batch, mixed_batch = bench_batch(cases, len(cases))
    row("guidance-rules batch, every line new", "≥ 20,000 cases/s", distinct_batch)
    row("guidance-rules batch, historical mix", "≥ 10,000 cases/s", mixed_batch)
    row("RSS over many evaluations", "flat (≤ 2 MiB growth)", bench_memory(cases[:5000], int(1_000_000 * scale)))
    row("threads against single-threaded oracle", "0 crashes, 0 differing", bench_threads(cases[:2000], 8, int(100_000 * scale)))
    if args.suite:
        row("sh scripts/test.sh", "≤ 3 min", bench_suite())
    if args.json:
        args.json.write_text(json.dumps({"machine": machine, "rows": rows}, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
