"""`guidance-rules batch` run in this process (`main([...])`), so that planted faults in
`guidance_rules.cli.batch` are reached (the other batch tests mostly start a process): the exact
output records, the summary and exit status, what an interruption keeps, the input's format and
the output file's mode. Written against the mutation run of issue 24."""

from __future__ import annotations

import io
import json
import os
import signal
import stat
import sys
from pathlib import Path
from typing import Any

import pytest

from guidance_rules import Recommender
from guidance_rules.cli import main
from guidance_rules.cli.batch import Tally, process
from guidance_rules.cli.inputs import Columns, Record, read_jsonl
from guidance_rules.errors import Terminated

KNEE = {"site": "knee", "injectate": "prp"}
HIP = {"site": "hip", "injectate": "prp"}
SHARED = Recommender()


def jsonl(*cases: Any) -> bytes:
    return b"".join((c if isinstance(c, bytes) else json.dumps(c).encode()) + b"\n" for c in cases)


def answer(case: dict[str, Any]) -> bytes:
    return SHARED.recommend_json(case).encode()


def batch(capsysbinary: pytest.CaptureFixture[bytes], *args: str) -> tuple[int, bytes, str]:
    code = main(["batch", *args])
    out, err = capsysbinary.readouterr()
    return code, out, err.decode()


# -- the records -------------------------------------------------------------------------------


def test_each_record_is_one_exact_line_in_input_order(tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    source = tmp_path / "in.jsonl"
    source.write_bytes(jsonl(KNEE, {"site": "knee"}, b"{broken", HIP, KNEE) + b"\n")
    code, out, err = batch(capsysbinary, str(source))
    injectate = json.dumps(
        [{"field": "injectate", "message": "required; allowed: corticosteroid, local_anesthetic, hyaluronic_acid, prp, cell_based, other"}],
        separators=(",", ":"),
    ).encode()
    assert out.splitlines() == [
        b'{"line":1,"recommendation":' + answer(KNEE) + b"}",
        b'{"line":2,"errors":' + injectate + b"}",
        b'{"line":3,"errors":[{"field":null,"message":"not valid JSON: Expecting property name enclosed in double quotes: '
        b'line 1 column 2 (char 1)"}]}',
        b'{"line":4,"recommendation":' + answer(HIP) + b"}",
        b'{"line":5,"recommendation":' + answer(KNEE) + b"}",
    ]
    assert out.endswith(b"}\n")
    assert code == 2
    assert err == (
        "batch: 6 input lines, 5 output records (the difference: 1 blank line): 3 recommended, 2 invalid, 0 failed; "
        "written to standard output\n"
    )


def test_an_id_is_carried_to_every_record(capsysbinary: pytest.CaptureFixture[bytes], tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_bytes(b"order,site,injectate\nA-1,knee,prp\n,hip,prp\n7,knee,nothing\n")
    code, out, err = batch(capsysbinary, str(source), "--id-column", "order")
    lines = [json.loads(line) for line in out.splitlines()]
    assert [(r["line"], r["id"], sorted(r)) for r in lines] == [
        (2, "A-1", ["id", "line", "recommendation"]),
        (3, "", ["id", "line", "recommendation"]),
        (4, "7", ["errors", "id", "line"]),
    ]
    assert out.splitlines()[0].startswith(b'{"line":2,"id":"A-1","recommendation":{')
    assert code == 2 and "4 input lines, 3 output records (the difference: 1 header line): 2 recommended, 1 invalid, 0 failed" in err


def test_all_good_exits_0_and_says_where_it_wrote(tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_bytes(jsonl(KNEE))
    code, out, err = batch(capsysbinary, str(source), "--out", str(target))
    assert (code, out) == (0, b"")
    assert target.read_bytes() == b'{"line":1,"recommendation":' + answer(KNEE) + b"}\n"
    assert err == f"batch: 1 input line, 1 output record: 1 recommended, 0 invalid, 0 failed; written to {target}\n"


def test_a_case_the_rule_base_cannot_answer_fails_the_batch(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes], rule_copy: Any
) -> None:
    def narrow(data: dict[str, Any]) -> None:
        [rule] = [r for r in data["rules"] if r["id"] == "LM-FAVOURABLE"]
        rule["when"]["target_size"] = "small"

    folder = rule_copy("landmark.yaml", narrow)
    source = tmp_path / "in.jsonl"
    source.write_bytes(jsonl(KNEE, HIP, KNEE))
    code = main(["--rules", str(folder), "batch", str(source)])
    out, err = capsysbinary.readouterr()
    lines = [json.loads(line) for line in out.splitlines()]
    assert [sorted(r) for r in lines] == [["errors", "line"], ["line", "recommendation"], ["errors", "line"]]
    assert lines[0]["errors"][0]["field"] is None
    assert lines[0]["errors"][0]["message"].startswith("the rule base could not answer this case: no rule rated")
    assert lines[2] == {**lines[0], "line": 3}
    assert code == 1 and "3 output records: 1 recommended, 0 invalid, 2 failed" in err.decode()


def test_process_writes_blocks_counts_them_and_reports_progress(monkeypatch: pytest.MonkeyPatch) -> None:
    from guidance_rules.cli import batch as module

    monkeypatch.setattr(module, "BLOCK", 2)
    seen: list[int] = []
    out = io.BytesIO()
    records = read_jsonl(io.BytesIO(jsonl(KNEE, {"id": 3, **HIP}, {"site": "knee"}, KNEE, HIP)), Columns(id_column="id"))
    tally = process(records, SHARED, out, with_id=True, progress=seen.append)
    assert (tally.good, tally.invalid, tally.failed, tally.total, tally.last_line) == (4, 1, 0, 5, 5)
    assert seen == [2, 2, 1]
    lines = out.getvalue().splitlines()
    assert lines[0].startswith(b'{"line":1,"id":null,"recommendation":') and lines[1].startswith(b'{"line":2,"id":3,"recommendation":')
    given = Tally(good=1)
    assert process(iter([Record(9, None, [("x", "bad")])]), SHARED, io.BytesIO(), tally=given) is given
    assert (given.good, given.invalid, given.last_line) == (1, 1, 9)
    assert process(iter([]), SHARED, io.BytesIO()) == Tally()


def test_repeated_cases_are_answered_once_even_past_a_block(monkeypatch: pytest.MonkeyPatch) -> None:
    from guidance_rules.cli import batch as module

    monkeypatch.setattr(module, "BLOCK", 2)
    fired: list[str] = []
    rec = Recommender(cache_size=0, on_fire=fired.append)
    out = io.BytesIO()
    process(read_jsonl(io.BytesIO(jsonl(KNEE, KNEE, KNEE, {"site": "knee"}, {"site": "knee"}))), rec, out)
    alone: list[str] = []
    Recommender(on_fire=alone.append).recommend(KNEE)
    assert sorted(fired) == sorted(alone)  # the three knees fired the rules of one evaluation
    assert len(set(out.getvalue().splitlines()[i][10:] for i in range(3))) == 1


# -- the input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "said"),
    [
        ("in.CSV", b"site,injectate\nknee,prp\n", "batch: reading {} as CSV; detected: encoding UTF-8, delimiter ','"),
        ("in.txt", b"site;injectate\nknee;prp\n", "batch: reading {} as CSV; detected: from its content, encoding UTF-8, delimiter ';'"),
        ("in.txt", jsonl(KNEE), "batch: reading {} as JSONL; detected: from its content"),
        ("in", b' \n{"site":"knee","injectate":"prp"}\n', "batch: reading {} as JSONL; detected: from its content"),
    ],
)
def test_the_format_is_taken_from_the_name_else_the_content_and_said(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes], name: str, content: bytes, said: str
) -> None:
    source = tmp_path / name
    source.write_bytes(content)
    code, out, err = batch(capsysbinary, str(source))
    assert code == 0 and out.count(b'"recommendation"') == 1
    assert err.splitlines()[0] == said.format(source) + " (set with --format, --delimiter, --encoding)"


@pytest.mark.parametrize("name", ["in.jsonl", "in.json", "in.NDJSON"])
def test_json_lines_by_name_are_read_without_a_word(tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes], name: str) -> None:
    source = tmp_path / name
    source.write_bytes(jsonl(KNEE))
    code, _, err = batch(capsysbinary, str(source))
    assert code == 0 and err.startswith("batch: 1 input line, 1 output record")


def test_a_given_format_is_not_said(tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    source = tmp_path / "in.jsonl"
    source.write_bytes(b"site,injectate\nknee,prp\n")
    code, out, err = batch(capsysbinary, str(source), "--format", "csv", "--delimiter", ",", "--encoding", "utf-8")
    assert code == 0 and out.count(b'"recommendation"') == 1 and "detected" not in err


def test_windows_1252_input_is_said(tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    source = tmp_path / "in.csv"
    source.write_bytes("order,site,injectate\nRéf,knee,prp\n".encode("cp1252"))
    code, out, err = batch(capsysbinary, str(source), "--id-column", "order")
    assert code == 0 and json.loads(out)["id"] == "Réf"
    assert err.splitlines()[:2] == [
        f"batch: reading {source} as CSV; detected: encoding Windows-1252 (not UTF-8 text), delimiter ','"
        " (set with --format, --delimiter, --encoding)",
        "batch: the input is not UTF-8 text, so it is read as Windows-1252 (as Excel saves in Western Europe)",
    ]
    code, out, err = batch(capsysbinary, str(source), "--id-column", "order", "--encoding", "windows-1252")
    assert code == 0 and "Windows-1252" not in err


@pytest.mark.parametrize(
    ("options", "said"),
    [
        (
            ["--delimiter", ";"],
            "invalid input: --delimiter: applies to CSV input; {} is read as JSON Lines (UTF-8); give --format csv if it is CSV",
        ),
        (
            ["--encoding", "utf-8"],
            "invalid input: --encoding: applies to CSV input; {} is read as JSON Lines (UTF-8); give --format csv if it is CSV",
        ),
    ],
)
def test_csv_options_on_json_lines_are_refused(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes], options: list[str], said: str
) -> None:
    source = tmp_path / "in.jsonl"
    source.write_bytes(jsonl(KNEE))
    code, out, err = batch(capsysbinary, str(source), *options)
    assert (code, out, err) == (2, b"", said.format(source) + "\n")


def test_an_input_that_cannot_be_opened_is_named(tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    assert batch(capsysbinary, str(tmp_path / "none.jsonl")) == (2, b"", f"invalid input: input: '{tmp_path / 'none.jsonl'}' not found\n")
    assert batch(capsysbinary, str(tmp_path)) == (
        2,
        b"",
        f"invalid input: input: '{tmp_path}' is a directory; give a .jsonl or .csv file\n",
    )


def test_a_csv_header_that_does_not_fit_is_refused_before_any_output(tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    source, target = tmp_path / "in.csv", tmp_path / "out.jsonl"
    source.write_bytes(b"site,colour\nknee,red\n")
    target.write_bytes(b"kept")
    code, out, err = batch(capsysbinary, str(source), "--out", str(target))
    assert (code, out) == (2, b"") and "invalid input: header: column 'colour' is not a case field" in err
    assert target.read_bytes() == b"kept"
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    assert batch(capsysbinary, str(empty))[:2] == (0, b"")


class Stdin:
    """Standard input that is a pipe: no peek, and stopped (Ctrl-C, or SIGTERM sent to this process)
    when `lines` lines have been read; `during` keeps the SIGTERM handling seen while stopping."""

    def __init__(self, data: bytes, lines: int | None = None, sigterm: bool = False) -> None:
        self.data, self.lines, self.sigterm = io.BytesIO(data), lines, sigterm
        self.during: list[Any] = []

    def readline(self, size: int = -1) -> bytes:
        if self.lines is not None:
            if self.lines == 0:
                self.stop()
            self.lines -= 1
        return self.data.readline(size)

    def stop(self) -> None:
        if not self.sigterm:
            raise KeyboardInterrupt
        try:
            os.kill(os.getpid(), signal.SIGTERM)
        except Terminated:
            self.during.append(signal.getsignal(signal.SIGTERM))
            raise

    def fileno(self) -> int:
        raise io.UnsupportedOperation


def stdin(monkeypatch: pytest.MonkeyPatch, data: bytes, lines: int | None = None, sigterm: bool = False) -> Stdin:
    given = Stdin(data, lines, sigterm)
    monkeypatch.setattr(sys, "stdin", type("In", (), {"buffer": given})())
    return given


def test_standard_input_without_a_peek_is_read_by_its_format(
    monkeypatch: pytest.MonkeyPatch, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    stdin(monkeypatch, jsonl(KNEE, HIP))
    code, out, err = batch(capsysbinary, "-", "--format", "jsonl")
    assert code == 0 and len(out.splitlines()) == 2 and "written to standard output" in err
    stdin(monkeypatch, b"site,injectate\nknee,prp\n")
    code, out, err = batch(capsysbinary, "-")  # no first bytes to look at: read as CSV, and said
    assert code == 0 and len(out.splitlines()) == 1
    assert err.startswith("batch: reading standard input as CSV; detected: from its content, encoding UTF-8, delimiter ','")


def test_an_interrupted_batch_says_what_it_kept(
    monkeypatch: pytest.MonkeyPatch, capsysbinary: pytest.CaptureFixture[bytes], tmp_path: Path
) -> None:
    from guidance_rules.cli import batch as module

    monkeypatch.setattr(module, "BLOCK", 1)
    stdin(monkeypatch, jsonl(KNEE, HIP, KNEE, HIP), lines=2)
    code, out, err = batch(capsysbinary, "-", "--format", "jsonl")
    assert code == 130 and len(out.splitlines()) == 2
    assert err == (
        "batch: interrupted; the 2 records written to standard output are complete, up to input line 2; "
        "the records after it were not written\n"
    )
    monkeypatch.setattr(module, "BLOCK", 256)
    stdin(monkeypatch, jsonl(KNEE, HIP), lines=1)
    assert batch(capsysbinary, "-", "--format", "jsonl") == (
        130,
        b"",
        "batch: interrupted before any record was written to standard output\n",
    )
    monkeypatch.setattr(module, "BLOCK", 1)
    target = tmp_path / "out.jsonl"
    target.write_bytes(b"old")
    stdin(monkeypatch, jsonl(KNEE, HIP, KNEE), lines=2)
    code, out, err = batch(capsysbinary, "-", "--format", "jsonl", "--out", str(target))
    assert (code, out) == (130, b"")
    assert err == f"batch: interrupted; nothing was kept: {target} was left as it was (run the batch again)\n"
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]


def test_sigterm_is_an_interruption_and_a_second_one_is_ignored(
    monkeypatch: pytest.MonkeyPatch, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    from guidance_rules.cli import batch as module

    monkeypatch.setattr(module, "BLOCK", 1)
    before = signal.getsignal(signal.SIGTERM)
    given = stdin(monkeypatch, jsonl(KNEE, HIP, KNEE), lines=2, sigterm=True)
    code, out, err = batch(capsysbinary, "-", "--format", "jsonl")
    assert code == 143 and given.during == [signal.SIG_IGN]
    assert len(out.splitlines()) == 2 and err.startswith("batch: interrupted; the 2 records written to standard output are complete")
    assert signal.getsignal(signal.SIGTERM) == before


def test_lines_no_record_accounts_for_fail_the_batch(monkeypatch: pytest.MonkeyPatch, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    """A reader that loses a line must not pass: the summary counts input lines against records."""
    from guidance_rules.cli import batch as module

    real = module.process

    def lose_one(records: Any, *args: Any, **kwargs: Any) -> Tally:
        next(records)
        return real(records, *args, **kwargs)

    monkeypatch.setattr(module, "process", lose_one)
    stdin(monkeypatch, jsonl(KNEE, HIP) + b"\n")
    code, out, err = batch(capsysbinary, "-", "--format", "jsonl")
    assert code == 1 and len(out.splitlines()) == 1
    assert err.splitlines() == [
        "batch: 3 input lines, 1 output record (the difference: 1 blank line, 1 line no record accounts for): "
        "1 recommended, 0 invalid, 0 failed; written to standard output",
        "error: 1 input line gave no output record; the output is incomplete",
    ]


def test_continued_lines_and_header_lines_are_counted_in_the_summary(tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    source = tmp_path / "in.csv"
    source.write_bytes(b'site,injectate\n"knee\n",prp\n\n"hip\n\n",prp\n')
    code, _, err = batch(capsysbinary, str(source))
    assert code == 0
    assert "7 input lines, 2 output records (the difference: 1 header line, 1 blank line, 3 lines continuing a quoted cell)" in err


# -- the output file ---------------------------------------------------------------------------


def test_the_output_is_refused_when_it_is_the_input(tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    source = tmp_path / "in.jsonl"
    source.write_bytes(jsonl(KNEE))
    link = tmp_path / "link.jsonl"
    link.symlink_to(source)
    said = f"invalid input: --out: '{link}' is the input file; write the output to another file\n"
    assert batch(capsysbinary, str(source), "--out", str(link)) == (2, b"", said)
    assert source.read_bytes() == jsonl(KNEE)


def test_output_through_a_link_replaces_its_target_and_keeps_the_link(tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    source, target, link = tmp_path / "in.jsonl", tmp_path / "target.jsonl", tmp_path / "link.jsonl"
    source.write_bytes(jsonl(HIP))
    target.write_bytes(b"old")
    link.symlink_to(target)
    code, _, err = batch(capsysbinary, str(source), "--out", str(link))
    assert code == 0 and link.is_symlink() and target.read_bytes().startswith(b'{"line":1,"recommendation":')
    assert err.endswith(f"written to {link}\n")


def test_the_output_keeps_the_mode_of_the_file_it_replaces(tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_bytes(jsonl(KNEE))
    target.write_bytes(b"old")
    target.chmod(0o640)
    assert batch(capsysbinary, str(source), "--out", str(target))[0] == 0
    assert stat.S_IMODE(target.stat().st_mode) == 0o640 and target.read_bytes() != b"old"
    fresh = tmp_path / "new.jsonl"
    mask = os.umask(0o002)
    try:
        assert batch(capsysbinary, str(source), "--out", str(fresh))[0] == 0
        assert os.umask(0o002) == 0o002  # the umask is as it was
    finally:
        os.umask(mask)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o664


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="only root may give a file to another owner")
def test_the_output_keeps_the_owner_of_the_file_it_replaces(tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_bytes(jsonl(KNEE))
    target.write_bytes(b"old")
    os.chown(target, 4321, 4322)
    target.chmod(0o2644)  # a set-group-id bit a chown after the chmod would clear
    assert batch(capsysbinary, str(source), "--out", str(target))[0] == 0
    info = target.stat()
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (4321, 4322, 0o2644)


def test_standard_output_that_cannot_be_written_is_said(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    class Full(io.BytesIO):
        def write(self, data: Any) -> int:
            raise OSError(28, "No space left on device")

    source = tmp_path / "in.jsonl"
    source.write_bytes(jsonl(KNEE))
    monkeypatch.setattr(sys, "stdout", type("Out", (), {"buffer": Full(), "isatty": lambda self: False, "fileno": lambda self: 1})())
    assert main(["batch", str(source)]) == 1
    assert capsys.readouterr().err == "error: cannot write to standard output: No space left on device\n"


class Terminal(io.StringIO):
    """Standard error that says it is a terminal, so batch shows its progress bar there."""

    def isatty(self) -> bool:
        return True


def test_on_a_terminal_the_progress_bar_shows_the_bytes_read_and_the_records_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from guidance_rules.cli import batch as module

    monkeypatch.setattr(module, "BLOCK", 1)
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_bytes(jsonl(KNEE, HIP, KNEE))
    shown = Terminal()
    monkeypatch.setattr(sys, "stderr", shown)
    assert main(["batch", str(source), "--out", str(target)]) == 0
    text = shown.getvalue()
    size = len(jsonl(KNEE, HIP, KNEE))
    assert "100%" in text and f"{size}/{size}" in text and "3 records]" in text
    assert text.rstrip().endswith("written to " + str(target))
    assert len(target.read_bytes().splitlines()) == 3
    quiet = Terminal()
    monkeypatch.setattr(sys, "stderr", quiet)
    assert main(["-q", "batch", str(source), "--out", str(target)]) == 0
    assert quiet.getvalue() == ""


def test_from_a_pipe_the_progress_bar_counts_without_a_total(
    monkeypatch: pytest.MonkeyPatch, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    shown = Terminal()
    stdin(monkeypatch, jsonl(KNEE, HIP))
    monkeypatch.setattr(sys, "stderr", shown)
    assert main(["batch", "-", "--format", "jsonl"]) == 0
    text = shown.getvalue()
    assert "2 records" in text and "%" not in text


def test_process_without_options_writes_no_id_and_uses_no_workers() -> None:
    out = io.BytesIO()
    tally = process(read_jsonl(io.BytesIO(jsonl({"id": 1, **KNEE}, KNEE)), Columns(id_column="id")), SHARED, out)
    assert [line[:27] for line in out.getvalue().splitlines()] == [b'{"line":1,"recommendation":', b'{"line":2,"recommendation":']
    assert tally.good == 2


def test_a_case_in_another_key_order_is_answered_once_and_a_failure_every_time(monkeypatch: pytest.MonkeyPatch, rule_copy: Any) -> None:
    from guidance_rules.cli import batch as module
    from guidance_rules.rulebase.load import load

    monkeypatch.setattr(module, "BLOCK", 1)
    fired: list[str] = []
    process(
        read_jsonl(io.BytesIO(jsonl(KNEE, {"injectate": "prp", "site": "knee"}))),
        Recommender(cache_size=0, on_fire=fired.append),
        io.BytesIO(),
    )
    alone: list[str] = []
    Recommender(on_fire=alone.append).recommend(KNEE)
    assert sorted(fired) == sorted(alone)

    def narrow(data: dict[str, Any]) -> None:
        [rule] = [r for r in data["rules"] if r["id"] == "LM-FAVOURABLE"]
        rule["when"]["target_size"] = "small"

    gap = Recommender(load(rule_copy("landmark.yaml", narrow)), cache_size=0, on_fire=fired.append)
    fired.clear()
    out = io.BytesIO()
    tally = process(read_jsonl(io.BytesIO(jsonl(KNEE))), gap, out)
    once = len(fired)
    fired.clear()
    tally = process(read_jsonl(io.BytesIO(jsonl(KNEE, KNEE))), gap, out)
    assert tally.failed == 2 and len(fired) >= 2 * once > 0  # each failed row evaluated again (only answers are remembered)


def test_an_invalid_site_lists_the_rule_bases_sites(tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    source = tmp_path / "in.jsonl"
    source.write_bytes(jsonl({"site": 5, "injectate": "prp"}, {"injectate": "prp", "site": 5}))
    code, out, _ = batch(capsysbinary, str(source))
    first, second = (json.loads(line) for line in out.splitlines())
    assert code == 2 and first["errors"] == second["errors"]
    assert first["errors"][0]["field"] == "site" and first["errors"][0]["message"].startswith(
        "Input should be a valid string; allowed: knee, hip,"
    )


def test_extra_columns_can_be_ignored(tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    source = tmp_path / "in.jsonl"
    source.write_bytes(jsonl({**KNEE, "colour": "red"}))
    code, out, _ = batch(capsysbinary, str(source), "--extra-columns", "ignore")
    assert code == 0 and out.startswith(b'{"line":1,"recommendation":')
    code, out, _ = batch(capsysbinary, str(source))
    assert code == 2 and b"'colour' is not a case field" in out
