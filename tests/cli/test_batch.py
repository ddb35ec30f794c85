"""`guidance-rules batch`: exactly one output record per input record, whatever the input holds,
and the output file is either as it was or complete. Issue 9's findings, each a regression test."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from guidance_rules.cli.batch import Tally, _write_atomically, process
from guidance_rules.cli.inputs import Columns, read_csv, read_jsonl
from guidance_rules.recommendation.recommender import Recommender
from guidance_rules.rulebase.space import as_json_case, free_space
from tests.conftest import ROOT


def run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "guidance_rules", "batch", *args], input=stdin, capture_output=True, cwd=ROOT, timeout=600)


def records(data: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in data.decode().splitlines()]


def distinct_cases(count: int) -> list[dict[str, Any]]:
    space = free_space()
    return [as_json_case(space.case(i)) for i in range(0, space.size, max(1, space.size // count))][:count]


def test_more_distinct_cases_than_the_answer_cache_loses_nothing(tmp_path: Path) -> None:
    """Before: a KeyError once more than 16,384 distinct cases had passed (rows after it lost)."""
    from guidance_rules.cli import batch

    cases = distinct_cases(3_000)
    source = io.BytesIO(b"".join(json.dumps(c).encode() + b"\n" for c in cases + cases[:500]))
    out = io.BytesIO()
    saved = batch.ANSWER_CACHE
    batch.ANSWER_CACHE = 100  # the same eviction, at a size a unit test can reach
    try:
        tally = process(read_jsonl(source), Recommender(), out)
    finally:
        batch.ANSWER_CACHE = saved
    got = records(out.getvalue())
    assert [r["line"] for r in got] == list(range(1, 3_501))
    assert tally.good + tally.invalid == 3_500 and tally.failed == 0


def test_output_to_the_input_file_is_refused_and_the_input_kept(tmp_path: Path) -> None:
    source = tmp_path / "x.jsonl"
    content = b'{"site": "knee", "injectate": "prp"}\n'
    source.write_bytes(content)
    result = run(str(source), "--out", str(source))
    assert result.returncode == 2 and b"is the input file" in result.stderr
    assert source.read_bytes() == content
    link = tmp_path / "link.jsonl"
    link.symlink_to(source)
    assert run(str(source), "--out", str(link)).returncode == 2 and source.read_bytes() == content


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (b'{"site": "knee", "injectate": "prp", "palpable": ' + b"9" * 5_000 + b"}", b"5,000 digits long was given, too long"),
        (b'{"site": "kn\xffee", "injectate": "prp"}', b"not UTF-8"),
        (b'{"site": "knee", "site": "hip", "injectate": "prp"}', b"given twice"),
        (b"[" * 100_000 + b"]" * 100_000, b"too long"),
        (b"[" * 50_000 + b"]" * 50_000, b"nested too deeply"),
    ],
)
def test_a_bad_line_is_that_lines_error_and_the_rest_go_on(tmp_path: Path, bad: bytes, message: bytes) -> None:
    good = b'{"site": "knee", "injectate": "prp"}'
    source = tmp_path / "in.jsonl"
    source.write_bytes(b"\n".join([good, bad, good]) + b"\n")
    result = run(str(source))
    got = records(result.stdout)
    assert [r["line"] for r in got] == [1, 2, 3] and result.returncode == 2, result.stderr
    assert "recommendation" in got[0] and "recommendation" in got[2]
    assert message.decode() in got[1]["errors"][0]["message"]


def test_a_csv_cell_over_the_csv_field_limit_is_that_rows_error(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_bytes(b'site,injectate\nknee,prp\n"' + b"x" * 200_000 + b'",prp\nhip,prp\n')
    got = records(run(str(source)).stdout)
    assert [r["line"] for r in got] == [2, 3, 4]
    assert "errors" in got[1] and "recommendation" in got[2]


def test_a_csv_saved_by_a_spreadsheet_with_a_bom_is_read() -> None:
    got = records(run("-", "--format", "csv", stdin=b"\xef\xbb\xbfsite,injectate\r\nknee,prp\r\n").stdout)
    assert "recommendation" in got[0]


def test_an_id_column_is_carried_and_other_columns_are_a_clear_choice() -> None:
    data = b"order_id,site,injectate,ward\nA-1,knee,prp,east\nA-2,hip,prp,west\n"
    rejected = run("-", "--format", "csv", "--id-column", "order_id", stdin=data)
    assert rejected.returncode == 2 and rejected.stdout == b""
    assert b"column 'ward' is not a case field" in rejected.stderr and b"--extra-columns ignore" in rejected.stderr
    accepted = records(run("-", "--format", "csv", "--id-column", "order_id", "--extra-columns", "ignore", stdin=data).stdout)
    assert [(r["id"], "recommendation" in r) for r in accepted] == [("A-1", True), ("A-2", True)]
    jsonl = records(run("-", "--id-column", "order_id", stdin=b'{"order_id": 7, "site": "knee", "injectate": "prp"}\n').stdout)
    assert jsonl[0]["id"] == 7 and "recommendation" in jsonl[0]


@pytest.mark.parametrize(
    ("header", "options", "said"),
    [
        (b"site,injectate,site", (), [b"header: column 'site' appears twice in the header; give each column once"]),
        (
            b"site,injectate,sitee,ward",
            (),
            [b"columns 'sitee' (did you mean 'site'?), 'ward' are not case fields", b"use --id-column NAME", b"--extra-columns ignore"],
        ),
        (
            b"site,injectate",
            ("--id-column", "order"),
            [b"--id-column: 'order' is not a column of the header; its columns: site, injectate"],
        ),
        (b"site;injectate", ("--delimiter", ","), [b"the header looks separated by ';': give --delimiter ';'"]),
    ],
)
def test_a_header_problem_is_refused_once_before_any_output(header: bytes, options: tuple[str, ...], said: list[bytes]) -> None:
    """Issue 21 point 3. Before: the same error on every one of the rows (exit 2 after reading the whole file)."""
    rows = b"knee,prp,hip,x\n" * 1_000
    result = run("-", "--format", "csv", *options, stdin=header + b"\n" + rows)
    assert result.returncode == 2 and result.stdout == b"", result.stderr
    assert all(result.stderr.count(text) == 1 for text in said), result.stderr
    assert result.stderr.count(b"invalid input") == 1


def test_a_row_of_only_commas_gets_a_record_and_blank_lines_do_not() -> None:
    got = records(run("-", "--format", "csv", stdin=b"site,injectate\n,\n\nknee,prp\n").stdout)
    assert [r["line"] for r in got] == [2, 4]
    assert got[0]["errors"][0]["field"] == "injectate"
    ending_blank = run("-", stdin=b'{"site": "knee", "injectate": "prp"}\n\n\n')
    assert ending_blank.returncode == 0 and len(records(ending_blank.stdout)) == 1


def test_a_multi_line_csv_record_is_numbered_by_its_first_line() -> None:
    got = records(run("-", "--format", "csv", stdin=b'site,injectate\n"knee\n",prp\nhip,prp\n').stdout)
    assert [r["line"] for r in got] == [2, 4]


def test_csv_on_standard_input_is_recognised_and_said() -> None:
    result = run("-", stdin=b"site,injectate\nknee,prp\n")
    assert "recommendation" in records(result.stdout)[0]
    assert b"as CSV" in result.stderr


def test_a_full_disk_names_the_file_and_leaves_the_target_as_it_was(tmp_path: Path) -> None:
    target = tmp_path / "out.jsonl"
    target.write_bytes(b"previous\n")

    def write(out: Any) -> Tally:
        out.write(b'{"line":1}\n')
        raise OSError(28, "No space left on device")

    error = _write_atomically(target, write)
    assert isinstance(error, OSError)
    assert target.read_bytes() == b"previous\n"
    assert os.listdir(tmp_path) == ["out.jsonl"]  # the partial file is gone
    full = subprocess.run(
        [sys.executable, "-m", "guidance_rules", "batch", "-"],
        input=b'{"site": "knee", "injectate": "prp"}\n',
        stdout=open("/dev/full", "wb"),  # noqa: SIM115
        stderr=subprocess.PIPE,
        cwd=ROOT,
        timeout=120,
    )
    assert full.returncode == 1 and b"cannot write to standard output" in full.stderr and b"Traceback" not in full.stderr


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_batch_leaves_the_target_absent_or_complete(tmp_path: Path, stop: signal.Signals) -> None:
    """Before: SIGTERM (unlike Ctrl-C) left the hidden .partial file behind."""
    cases = distinct_cases(20_000)
    source = tmp_path / "in.jsonl"
    source.write_bytes(b"".join(json.dumps(c).encode() + b"\n" for c in cases))
    target = tmp_path / "out.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "guidance_rules", "batch", str(source), "--out", str(target)], cwd=ROOT, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 120  # interrupt it while it writes: before, a fixed 3 s could fall in its start-up on a busy machine
    while not any(p.name.endswith(".partial") for p in tmp_path.iterdir()) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(stop)
    proc.wait(timeout=120)
    if target.exists():  # it finished before the interrupt: then it is complete
        assert len(target.read_bytes().splitlines()) == len(cases)
    else:
        assert proc.returncode == {signal.SIGINT: 130, signal.SIGTERM: 143}[stop]
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".partial")] == []


def test_readers_number_records_like_the_file() -> None:
    jsonl = list(read_jsonl(io.BytesIO(b'\n{"site": "knee", "injectate": "prp"}\n\n{}\n')))
    assert [r.line for r in jsonl] == [2, 4]
    rows = list(read_csv(io.BytesIO(b"site,injectate\nknee,prp\n"), Columns()))
    assert rows[0].line == 2 and rows[0].data == {"site": "knee", "injectate": "prp"}


def test_output_to_a_device_is_written_to_not_replaced() -> None:
    result = run("-", "--out", os.devnull, stdin=b'{"site": "knee", "injectate": "prp"}\n')
    assert result.returncode == 0, result.stderr
    assert Path(os.devnull).is_char_device()


def test_worker_processes_write_the_same_bytes_in_the_same_order(tmp_path: Path) -> None:
    cases = distinct_cases(3_000)
    source = tmp_path / "in.jsonl"
    lines = [json.dumps(c).encode() for c in cases]
    lines[2_500] = b"{broken"  # an error record inside a worker's block
    source.write_bytes(b"\n".join(lines) + b"\n")
    one, two = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    first = run(str(source), "--out", str(one), "--workers", "1")
    second = run(str(source), "--out", str(two), "--workers", "2")
    assert first.returncode == second.returncode == 2
    assert one.read_bytes() == two.read_bytes()
    assert len(one.read_bytes().splitlines()) == 3_000


# -- the output file: checked before any work, replaced like an ordinary write --------------------

CASE = b'{"site": "knee", "injectate": "prp"}\n'


def _unshared_may_not_write(path: Path) -> str | None:
    """Why a test as an unprivileged user cannot run here, or None: it needs `unshare --user` (a
    user namespace, where even root is 'nobody') and a system that then enforces the mode bits."""
    probe = f"import os, sys; sys.exit(0 if not os.access({str(path)!r}, os.W_OK) else 3)"
    try:
        result = subprocess.run(["unshare", "--user", sys.executable, "-c", probe], capture_output=True, timeout=60)
    except FileNotFoundError:
        return "unshare is not installed"
    if result.returncode == 3:
        return f"{path} is writable by an unprivileged user here (permissions not enforced in the user namespace)"
    return None if result.returncode == 0 else f"unshare --user is not allowed here: {result.stderr.decode().strip()}"


def test_a_read_only_out_file_is_refused_before_any_work_and_kept(tmp_path: Path) -> None:
    """Before: the rename replaced a chmod 444 file (a rename needs only the folder's permission)."""
    target = tmp_path / "r.jsonl"
    target.write_bytes(b"kept\n")
    target.chmod(0o444)
    result = run("-", "--out", str(target), stdin=CASE)
    assert result.returncode == 2 and b"--out" in result.stderr and b"read-only (mode 0444)" in result.stderr, result.stderr
    assert target.read_bytes() == b"kept\n" and b"Traceback" not in result.stderr


def test_an_out_folder_this_user_may_not_write_is_refused_before_any_work(tmp_path: Path) -> None:
    """Before: '[Errno 13] Permission denied: .../ro/.out.jsonl.xxxx.partial', exit 1 (mkstemp was outside the try)."""
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    tmp_path.chmod(0o755)
    reason = _unshared_may_not_write(folder)
    if reason:
        pytest.skip(reason)
    result = subprocess.run(
        ["unshare", "--user", sys.executable, "-m", "guidance_rules", "batch", "-", "--out", str(folder / "out.jsonl")],
        input=CASE,
        capture_output=True,
        cwd=ROOT,
        timeout=120,
    )
    assert result.returncode == 2 and b"--out" in result.stderr and b"permission denied" in result.stderr, result.stderr
    assert b"Traceback" not in result.stderr and list(folder.iterdir()) == []


def test_a_temporary_file_that_cannot_be_made_is_reported_not_raised(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tempfile

    def refuse(**_: Any) -> tuple[int, str]:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    assert isinstance(_write_atomically(tmp_path / "out.jsonl", lambda out: Tally()), PermissionError)


def test_the_output_keeps_the_old_files_mode_and_a_new_one_follows_the_umask(tmp_path: Path) -> None:
    """Before: every output file was 0600 (mkstemp's mode)."""
    old = tmp_path / "old.jsonl"
    old.write_bytes(b"previous\n")
    old.chmod(0o640)
    new = tmp_path / "new.jsonl"
    for target in (old, new):
        result = subprocess.run(
            [sys.executable, "-m", "guidance_rules", "batch", "-", "--out", str(target)],
            input=CASE,
            capture_output=True,
            cwd=ROOT,
            timeout=120,
            umask=0o027,
        )
        assert result.returncode == 0, result.stderr
    assert (old.stat().st_mode & 0o777, new.stat().st_mode & 0o777) == (0o640, 0o640)
    assert len(records(old.read_bytes())) == 1


def test_an_empty_out_is_refused_not_standard_output() -> None:
    """Before: --out '' wrote to standard output."""
    result = run("-", "--out", "", stdin=CASE)
    assert result.returncode == 2 and b"--out" in result.stderr and b"empty file name" in result.stderr and result.stdout == b""


def test_out_through_a_symbolic_link_writes_its_target_and_keeps_the_link(tmp_path: Path) -> None:
    """Before: the link itself was replaced by a regular file and its target left stale."""
    real = tmp_path / "results" / "today.jsonl"
    real.parent.mkdir()
    real.write_bytes(b"previous\n")
    link = tmp_path / "latest.jsonl"
    link.symlink_to(real)
    result = run("-", "--out", str(link), stdin=CASE)
    assert result.returncode == 0, result.stderr
    assert link.is_symlink() and link.resolve() == real.resolve()
    assert "recommendation" in records(real.read_bytes())[0]
    assert [p.name for p in real.parent.iterdir()] == ["today.jsonl"]


def test_a_case_field_as_the_id_column_stays_in_the_case() -> None:
    """Before: --id-column site took the site out of every case, and each row got a misleading error."""
    csv_rows = records(run("-", "--format", "csv", "--id-column", "site", stdin=b"site,injectate\nknee,prp\nhip,prp\n").stdout)
    assert [(r["id"], r["recommendation"]["evidence"][0]["site"]) for r in csv_rows] == [("knee", "knee"), ("hip", "hip")]
    listed = records(
        run(
            "-", "--format", "csv", "--id-column", "anatomy_variance", stdin=b"site,injectate,anatomy_variance\nknee,prp,obesity;effusion\n"
        ).stdout
    )
    assert listed[0]["id"] == "obesity;effusion" and "recommendation" in listed[0]
    jsonl = records(run("-", "--id-column", "site", stdin=CASE).stdout)
    assert jsonl[0]["id"] == "knee" and "recommendation" in jsonl[0]


def test_an_id_column_the_csv_header_lacks_is_refused_once_before_any_output() -> None:
    """Before: the same error on every row, as if the rows were wrong."""
    result = run("-", "--format", "csv", "--id-column", "nosuch", stdin=b"site,injectate\nknee,prp\nhip,prp\n")
    assert result.returncode == 2 and result.stdout == b"", result.stderr
    assert result.stderr.count(b"--id-column: 'nosuch' is not a column of the header; its columns: site, injectate") == 1


def test_a_number_too_long_to_read_names_its_field_not_a_python_setting() -> None:
    """Before: 'Exceeds the limit (4300 digits) ...; use sys.set_int_max_str_digits()', no field named."""
    got = records(run("-", stdin=b'{"site": "knee", "injectate": "prp", "anatomy_variance": [-' + b"9" * 5_000 + b"]}\n").stdout)
    (error,) = got[0]["errors"]
    assert error["field"] == "anatomy_variance" and "5,000 digits long was given, too long to read (at most 4,300" in error["message"]
    assert "sys.set_int_max_str_digits" not in error["message"]


def test_word_values_from_a_spreadsheet_or_a_file_are_case_insensitive() -> None:
    """'Knee,PRP' from a spreadsheet was refused on every row while --site Knee was accepted."""
    plain = records(run("-", "--format", "csv", stdin=b"site,injectate,anatomy_variance\nknee,prp,obesity\n").stdout)
    mixed = records(run("-", "--format", "csv", stdin=b"site,injectate,anatomy_variance\nKnee, PRP ,Obesity\n").stdout)
    jsonl = records(run("-", "--format", "jsonl", stdin=b'{"site": "KNEE", "injectate": "Prp", "anatomy_variance": ["OBESITY"]}\n').stdout)
    assert "recommendation" in plain[0]
    assert mixed[0]["recommendation"] == plain[0]["recommendation"] == jsonl[0]["recommendation"]


GAP_ROWS = [
    {"site": "knee", "injectate": "prp"},  # the planted gap: no rule rates this knee
    {"site": "hip", "injectate": "prp"},  # answered
    {"site": "knee", "injectate": "nothing"},  # invalid
    {"site": "knee", "injectate": "prp"},  # the gap again: its own record, not a memo hit that drops it
    {"site": "knee", "injectate": "corticosteroid"},  # another case in the gap
]


def planted_gap(rule_copy: Any) -> Path:
    """A temporary rule base that cannot rate a plain knee (LM-FAVOURABLE narrowed to small targets)."""

    def narrow(data: dict[str, Any]) -> None:
        [rule] = [r for r in data["rules"] if r["id"] == "LM-FAVOURABLE"]
        rule["when"]["target_size"] = "small"

    return rule_copy("landmark.yaml", narrow)  # type: ignore[no-any-return]


def assert_one_record_per_row_with_failed_gaps(got: list[dict[str, Any]]) -> None:
    assert [r["line"] for r in got] == [1, 2, 3, 4, 5]
    assert [sorted(r) for r in got] == [
        ["errors", "line"],
        ["line", "recommendation"],
        ["errors", "line"],
        ["errors", "line"],
        ["errors", "line"],
    ]
    for i in (0, 3, 4):
        [error] = got[i]["errors"]
        assert error["field"] is None and error["message"].startswith("the rule base could not answer this case: no rule rated")
    assert got[2]["errors"][0]["field"] == "injectate"


@pytest.mark.parametrize("workers", [1, 2])
def test_rows_a_rule_base_with_a_gap_cannot_answer_get_a_failed_record(
    rule_copy: Any, workers: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 24: not writing a 'failed' record passed every test; none ran batch against a gap."""
    from guidance_rules.cli import batch
    from guidance_rules.rulebase.load import load

    monkeypatch.setattr(batch, "POOL_AFTER", 2)  # with 2 workers, rows after the first block go to worker processes
    monkeypatch.setattr(batch, "BLOCK", 2)
    source = io.BytesIO(b"".join(json.dumps(c).encode() + b"\n" for c in GAP_ROWS))
    out = io.BytesIO()
    tally = process(read_jsonl(source), Recommender(load(planted_gap(rule_copy))), out, workers=workers)
    assert (tally.good, tally.invalid, tally.failed) == (1, 1, 3)
    assert_one_record_per_row_with_failed_gaps(records(out.getvalue()))


def test_batch_command_on_a_rule_base_with_a_gap_writes_every_row_and_exits_1(rule_copy: Any, tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_bytes(b"".join(json.dumps(c).encode() + b"\n" for c in GAP_ROWS))
    result = subprocess.run(
        [sys.executable, "-m", "guidance_rules", "--rules", str(planted_gap(rule_copy)), "batch", str(source)],
        capture_output=True,
        cwd=ROOT,
        timeout=600,
    )
    assert result.returncode == 1, result.stderr
    assert_one_record_per_row_with_failed_gaps(records(result.stdout))
