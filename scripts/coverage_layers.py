"""Branch coverage per layer from the test command's coverage data, with a floor per layer.

Usage: .venv/bin/python scripts/coverage_layers.py [DATA_FILE]   (default .coverage)

Each layer's figure is (covered lines + covered branches) / (lines + branches) over its files,
the same measure coverage.py reports per file with branch coverage on. Exits 1 when a layer
falls below its floor in FLOORS (set just under the figure measured when it was last raised),
so CI fails on a drop. Coverage is measured in the test processes (pytest and its xdist
workers); code that runs only in a subprocess a test starts (the CLI by `python -m`, the audit's
worker pool) is not counted.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import coverage

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ("model", "rulebase", "engine", "recommendation", "audit", "cli", "service", "frames")
# percent, about a point under the figures measured 2026-12-02 (the README's development section)
FLOORS = {
    "model": 98.5,
    "rulebase": 98.0,
    "engine": 95.5,
    "recommendation": 97.0,
    "audit": 95.5,
    "cli": 78.5,
    "service": 80.5,
    "frames": 71.5,  # tests/frames/test_core.py; the adapters run in the engine tests, outside coverage
    "(top)": 82.5,
    "total": 88.0,
}


def layer_of(path: str) -> str:
    parts = Path(path).parts
    inside = parts[parts.index("guidance_rules") + 1 :] if "guidance_rules" in parts else parts
    return inside[0] if len(inside) > 1 and inside[0] in LAYERS else "(top)"


def measure(data_file: str) -> dict[str, tuple[int, int]]:
    """layer -> (covered lines and branches, all lines and branches)."""
    cov = coverage.Coverage(data_file=data_file, config_file=str(ROOT / "pyproject.toml"))
    cov.load()
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        cov.json_report(outfile=out.name)
        files = json.loads(Path(out.name).read_text())["files"]
    sums: dict[str, list[int]] = {}
    for path, info in files.items():
        s = info["summary"]
        got = sums.setdefault(layer_of(path), [0, 0])
        got[0] += s["covered_lines"] + s.get("covered_branches", 0)
        got[1] += s["num_statements"] + s.get("num_branches", 0)
    sums["total"] = [sum(v[0] for v in sums.values()), sum(v[1] for v in sums.values())]
    return {k: (v[0], v[1]) for k, v in sums.items()}


def main() -> int:
    data_file = sys.argv[1] if len(sys.argv) > 1 else str(ROOT / ".coverage")
    if not Path(data_file).exists():
        print(f"coverage_layers: no coverage data at {data_file}; run the tests with --cov first", file=sys.stderr)
        return 2
    failed = []
    print(f"{'layer':16} {'branch coverage':>16} {'floor':>7}")
    for layer, (covered, total) in sorted(measure(data_file).items(), key=lambda kv: (kv[0] == "total", kv[0])):
        percent = 100 * covered / total if total else 100.0
        floor = FLOORS.get(layer, 0.0)
        print(f"{layer:16} {percent:15.1f}% {floor:6.1f}%  ({covered:,} of {total:,} lines and branches)")
        if percent < floor:
            failed.append(f"{layer} {percent:.1f}% < {floor:.1f}%")
    if failed:
        print(f"coverage below the floor: {'; '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
