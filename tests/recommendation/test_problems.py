"""Hostile input: whatever arrives, the answer is a validation error naming a field, never a
traceback and never a recommendation."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from guidance_rules import Case, recommend
from guidance_rules.cli.inputs import parse_json_case
from guidance_rules.recommendation.problems import problems_of
from guidance_rules.rulebase.load import default_knowledge
from tests.conftest import ROOT

FIELDS = list(Case.model_fields)
junk = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True)
    | st.text(max_size=300)
    | st.just("x" * 10_000),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@st.composite
def malformed(draw: st.DrawFn) -> dict[str, Any]:
    """A valid case with one part broken: a wrong value, a wrong type, or an unknown key."""
    case: dict[str, Any] = {"site": "knee", "injectate": "prp"}
    kind = draw(st.sampled_from(["value", "key", "drop"]))
    if kind == "value":
        field = draw(st.sampled_from(FIELDS))
        value = draw(junk)
        valid = {"site": [*default_knowledge().sites, None]}.get(field)
        if valid is not None and value in valid:
            value = 12345
        case[field] = value
    elif kind == "key":
        case[draw(st.text(min_size=1, max_size=40).filter(lambda k: k not in FIELDS))] = draw(junk)
    else:
        del case["injectate"]
    return case


def is_valid(case: dict[str, Any]) -> bool:
    try:
        Case.model_validate(case)
    except ValidationError:
        return False
    return True


@given(malformed())
def test_library_rejects_with_a_named_field(case: dict[str, Any]) -> None:
    if is_valid(case):  # e.g. a junk value that happens to be valid (palpable=False)
        return
    try:
        recommend(case)
    except ValidationError as error:
        problems = problems_of(error, default_knowledge())
        assert problems and all(field for field, _ in problems), problems
    else:
        raise AssertionError(f"recommended from invalid input {case!r}")


@given(junk)
def test_any_json_value_is_rejected_or_parsed_cleanly(value: Any) -> None:
    text = json.dumps(value)
    try:
        data = parse_json_case(text)
    except ValueError:
        return
    assert isinstance(data, dict)


def test_deep_nesting_and_huge_numbers() -> None:
    deep = "[" * 100_000 + "]" * 100_000
    for text in (deep, '{"site": "knee", "injectate": "prp", "palpable": ' + "9" * 5000 + "}"):
        try:
            data = parse_json_case(text)
        except ValueError:
            continue
        try:
            Case.model_validate(data)
        except ValidationError:
            continue
        raise AssertionError("accepted")


@settings(max_examples=15, deadline=None)
@given(malformed())
def test_cli_exits_2_without_traceback(case: dict[str, Any]) -> None:
    if is_valid(case):
        return
    try:
        text = json.dumps(case)
    except ValueError:  # NaN-free JSON cannot carry it; the library test covers it
        return
    result = subprocess.run(
        [sys.executable, "-m", "guidance_rules", "recommend", "-", "--json"],
        input=text,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert result.stderr.startswith("invalid input: ")


def _batch_peak(tmp_path: Path, megabytes: int) -> int:
    """Batch over about `megabytes` MB of JSON Lines (one bad line per thousand): check that every
    line is answered, in order, and return the process's peak memory in KiB."""
    line = json.dumps({"site": "knee", "injectate": "prp", "anatomy_variance": ["effusion"]}) + "\n"
    chunk = (line * 999 + "{broken\n").encode()
    source = tmp_path / f"big-{megabytes}.jsonl"
    with source.open("wb") as handle:
        while handle.tell() < megabytes * 1024 * 1024:
            handle.write(chunk)
    expected = source.stat().st_size // len(chunk) * 1000
    # VmHWM belongs to the new address space, so unlike ru_maxrss it does not inherit the
    # (large) peak of the forked pytest process.
    script = (
        "import re, sys, runpy\n"
        "sys.argv = ['guidance-rules', 'batch', sys.argv[1]]\n"
        "try:\n    runpy.run_module('guidance_rules', run_name='__main__')\n"
        "except SystemExit as exit:\n    code = exit.code\n"
        "sys.stdout.flush()\n"
        "peak = re.search(r'VmHWM:\\s+(\\d+) kB', open('/proc/self/status').read()).group(1)\n"
        "print('PEAK', peak, code, file=sys.stderr)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script, str(source)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    assert proc.stdout is not None and proc.stderr is not None
    lines = bad = 0
    tail = b""
    for block in iter(lambda: proc.stdout.read(1 << 20), b""):  # type: ignore[union-attr]
        lines += block.count(b"\n")
        bad += block.count(b'"errors"') + (tail + block[:7]).count(b'"errors"')  # plus any match split across blocks
        tail = block[-7:]
    stderr = proc.stderr.read().decode()
    proc.wait(timeout=1200)
    _, peak_kib, code = stderr.strip().splitlines()[-1].split()
    assert code == "2"
    assert lines == expected and bad == expected // 1000
    return int(peak_kib)


def test_large_batch_streams_in_bounded_memory(tmp_path: Path) -> None:
    """Memory is flat in the input: four times the input (6 MB, then 24 MB of JSON Lines, past the
    point where the worker processes start) raises the peak by far less than the 18 MB added,
    and the peak stays far below 100 MB. (This ran over 100 MB once, for minutes: a growth of a
    fraction of the input shows as well over 24 MB as over 100.)"""
    small, large = _batch_peak(tmp_path, 6), _batch_peak(tmp_path, 24)
    assert large - small < 6 * 1024, f"peak RSS {small // 1024} MiB for 6 MB of input, {large // 1024} MiB for 24 MB"
    assert large < 100 * 1024, f"peak RSS {large // 1024} MiB for a 24 MB input"


def test_a_missing_field_lists_what_it_may_be() -> None:
    """'required' alone told nobody what to give (review finding)."""
    with pytest.raises(ValidationError) as caught:
        recommend({"site": "knee"})
    [(field, message)] = problems_of(caught.value, default_knowledge())
    assert field == "injectate" and message.startswith("required; allowed: corticosteroid, local_anesthetic")
