"""The benchmarks' anchors live in the repository and agree with their floor (issue 22)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "benchmarks"


def test_benchmarks_read_nothing_outside_the_repository() -> None:
    """A fresh clone has no ../shared: no benchmark may reach for it."""
    outside = re.compile(r"[\"'/]shared\b|ROOT\.parent|\.\./")
    offenders = [str(p.relative_to(ROOT)) for p in BENCHMARKS.rglob("*.py") if outside.search(p.read_text())]
    assert offenders == []


@pytest.mark.parametrize("engine", ["eng_hand", "eng_pydantic", "eng_durable"])
def test_each_anchor_gives_the_floors_answer_on_every_case(engine: str, tmp_path: Path) -> None:
    """Run as run.py runs it (a script by path), from outside the checkout; the script exits
    non-zero when the anchor disagrees with the plain if/else floor on any of the 6,336 cases."""
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "anchors" / "bench.py"), engine, "--reps", "0"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"DURABLE_NO_DISPATCHER": "1", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert (result["cases"], result["mismatches"]) == (6336, 0)
    assert result["us_per_call_p50"] > 0


def test_the_minimal_pydantic_program_runs() -> None:
    done = subprocess.run([sys.executable, str(BENCHMARKS / "anchors" / "minimal_pydantic.py")], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == {"name": "x", "count": 1}
