"""A million-line batch of mostly distinct cases: every line answered, memory flat.

    .venv/bin/python -m benchmarks.batch_million [--lines N]

Writes the input to a temporary folder, runs `guidance-rules batch` on it in a child process,
and prints lines in and out, distinct cases, time, cases per second and the child's peak RSS.
A measurement, not a test.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from guidance_rules.rulebase.load import default_knowledge
from guidance_rules.rulebase.space import as_json_case, free_space, site_space

ROOT = Path(__file__).resolve().parent.parent
PEAK = (
    "import re, runpy, sys\n"
    "sys.argv = ['guidance-rules', 'batch', sys.argv[1], '--out', sys.argv[2]]\n"
    "try:\n    runpy.run_module('guidance_rules', run_name='__main__')\n"
    "except SystemExit as exit:\n    code = exit.code\n"
    "print('PEAK', re.search(r'VmHWM:\\s+(\\d+) kB', open('/proc/self/status').read()).group(1), code, file=sys.stderr)\n"
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=1_000_000)
    args = parser.parse_args()
    spaces = [free_space(), site_space(default_knowledge())]
    rng = random.Random(11)
    with tempfile.TemporaryDirectory() as folder:
        source, target = Path(folder) / "in.jsonl", Path(folder) / "out.jsonl"
        distinct: set[tuple[str, int]] = set()
        with source.open("w") as handle:
            for _ in range(args.lines):
                space = spaces[0] if rng.random() < 0.8 else spaces[1]
                index = rng.randrange(space.size)
                distinct.add((space.name, index))
                handle.write(json.dumps(as_json_case(space.case(index))) + "\n")
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", PEAK, str(source), str(target)], capture_output=True, text=True, cwd=ROOT)
        seconds = time.perf_counter() - start
        peak_kib, code = re.findall(r"PEAK (\d+) (\S+)", done.stderr)[-1]
        out_lines = sum(1 for _ in target.open("rb"))
        summary = [line for line in done.stderr.splitlines() if line.startswith("batch:")]
        print(f"lines in {args.lines:,}, lines out {out_lines:,} ({'all' if out_lines == args.lines else 'MISSING'}), exit {code}")
        print(f"distinct cases {len(distinct):,} ({len(distinct) / args.lines:.0%} of lines); {summary[-1] if summary else ''}")
        print(f"time {seconds:.1f} s, {args.lines / seconds:,.0f} lines/s; peak RSS {int(peak_kib) / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
