"""Batch input as clinics save it (issue 21, points 1 and 2): an unclosed quote loses no row, and
European Excel exports (';', Windows-1252) are read, with what was detected said."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from guidance_rules.cli.inputs import Lines, _rows, read_csv
from tests.conftest import ROOT

ROW = b"knee,prp\n"


def run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "guidance_rules", "batch", *args], input=stdin, capture_output=True, cwd=ROOT, timeout=600)


def records(data: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in data.decode().splitlines()]


def with_unclosed_quote(rows: int, at: int) -> bytes:
    """A CSV of `rows` rows whose row `at` (1-based, after the header) opens a quote it never closes."""
    return b"site,injectate\n" + b"".join(b'knee,"prp\n' if i == at else ROW for i in range(1, rows + 1))


@pytest.mark.parametrize("rows", [50_000, 5_000])
def test_an_unclosed_quote_is_its_rows_error_and_no_row_is_lost(rows: int) -> None:
    """Issue 21 point 1, with the issue's sizes. Before: 50,000 rows gave 38,889 records ('field larger
    than field limit') and 5,000 rows gave 100: every row after the quote was swallowed into its cell."""
    got = list(read_csv(io.BytesIO(with_unclosed_quote(rows, 101))))
    assert [r.line for r in got] == list(range(2, rows + 2))
    bad = [r for r in got if r.data is None]
    assert [r.line for r in bad] == [102] and "quoted cell opened on this line is not closed" in bad[0].problems[0][1]
    assert got[101].data == {"site": "knee", "injectate": "prp"}


def test_an_unclosed_quote_at_the_end_and_a_closed_one_across_lines() -> None:
    data = b'site,injectate\nhip,"p""rp"\n"knee\n",prp\nknee,"prp\nhip,prp\n'
    got = list(read_csv(io.BytesIO(data)))
    assert [(r.line, r.data is None) for r in got] == [(2, False), (3, False), (5, True), (6, False)]
    assert got[0].data == {"site": "hip", "injectate": 'p"rp'}  # a doubled quote is a quote in the cell, not its end
    assert got[1].data == {"site": "knee", "injectate": "prp"} and got[3].data == {"site": "hip", "injectate": "prp"}
    assert "not closed before the end of the input" in got[2].problems[0][1]


def test_the_summary_counts_input_lines_and_output_records_and_explains_a_difference() -> None:
    """Issue 21 point 1. Before: 'batch: 100 records, ...' for a file of 5,000 rows; the loss never showed."""
    result = run("-", "--format", "csv", stdin=with_unclosed_quote(5_000, 101))
    assert len(records(result.stdout)) == 5_000 and result.returncode == 2
    assert b"batch: 5,001 input lines, 5,000 output records (the difference: 1 header line): 4,999 recommended, 1 invalid" in result.stderr
    spanning = run("-", "--format", "csv", stdin=b'site,injectate\n"knee\n",prp\n\nhip,prp\n')
    assert (
        b"5 input lines, 2 output records (the difference: 1 header line, 1 blank line, 1 line continuing a quoted cell)" in spanning.stderr
    )


EUROPEAN = "order_id;site;injectate;anatomy_variance\r\nRéf-1;Knee;PRP;obesity\r\nRéf-2;hip;prp;\r\n"


def test_a_european_excel_export_is_read_and_what_was_detected_is_said(tmp_path: Path) -> None:
    """Issue 21 point 2. Before: the header was one column, every row was told to use --id-column,
    and the é was 'not UTF-8 text'."""
    source = tmp_path / "orders.csv"
    source.write_bytes(EUROPEAN.encode("cp1252"))
    result = run(str(source), "--id-column", "order_id")
    got = records(result.stdout)
    assert result.returncode == 0, result.stderr
    assert [(r["id"], "recommendation" in r) for r in got] == [("Réf-1", True), ("Réf-2", True)]
    assert b"delimiter ';'" in result.stderr and b"Windows-1252" in result.stderr


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (b"\xef\xbb\xbf" + EUROPEAN.encode(), b"encoding UTF-8, delimiter ';'"),
        (EUROPEAN.replace(";", "\t").encode(), b"encoding UTF-8, delimiter tab"),
        (EUROPEAN.replace(";", ",").encode("cp1252"), b"encoding Windows-1252 (not UTF-8 text), delimiter ','"),
    ],
)
def test_the_delimiter_and_encoding_are_detected(content: bytes, said: bytes) -> None:
    result = run("-", "--format", "csv", "--id-column", "order_id", stdin=content)
    assert [r["id"] for r in records(result.stdout)] == ["Réf-1", "Réf-2"] and result.returncode == 0, result.stderr
    assert said in result.stderr


def test_delimiter_and_encoding_can_be_given() -> None:
    content = EUROPEAN.replace(";", "|").encode("cp1252")
    given = run("-", "--format", "csv", "--id-column", "order_id", "--delimiter", "|", "--encoding", "windows-1252", stdin=content)
    assert [r["id"] for r in records(given.stdout)] == ["Réf-1", "Réf-2"] and given.returncode == 0, given.stderr
    assert b"detected" not in given.stderr
    as_utf8 = run("-", "--format", "csv", "--id-column", "order_id", "--delimiter", "|", "--encoding", "utf-8", stdin=content)
    got = records(as_utf8.stdout)
    assert len(got) == 2 and "--encoding windows-1252" in got[0]["errors"][0]["message"]
    wrong = run("-", "--encoding", "klingon", stdin=content)
    assert wrong.returncode == 2 and b"give utf-8 or windows-1252" in wrong.stderr
    not_csv = run("-", "--delimiter", ";", stdin=b'{"site": "knee", "injectate": "prp"}\n')
    assert not_csv.returncode == 2 and not_csv.stdout == b"" and b"--delimiter: applies to CSV input" in not_csv.stderr


cells = st.text(alphabet='ab ",;\t\n', max_size=6)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(cells, min_size=2, max_size=2), min_size=1, max_size=8), st.sampled_from([",", ";", "\t"]), st.booleans())
def test_rows_the_csv_module_writes_are_read_back_as_written(rows: list[list[str]], delimiter: str, quote_all: bool) -> None:
    """The reader finds each row's end itself; it must agree with the csv module on every row it writes."""
    text = io.StringIO()
    csv.writer(text, delimiter=delimiter, quoting=csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL, lineterminator="\n").writerows(rows)
    lines = Lines()
    got = list(_rows(((n, line) for n, line in enumerate(text.getvalue().split("\n")[:-1], 1)), delimiter, lines))
    assert [cells for _, cells in got] == rows


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet='ab",\n', max_size=8), max_size=12))
def test_every_line_is_a_record_a_continuation_or_blank(lines: list[str]) -> None:
    """Whatever the quotes, no line is lost: records, continuations and blank lines add up to the lines."""
    numbered = list(enumerate("\n".join(lines).split("\n"), 1))
    seen = Lines()
    got = list(_rows(iter(numbered), ",", seen))
    assert len(got) + seen.continued + seen.blank == len(numbered)
    assert [n for n, _ in got] == sorted({n for n, _ in got})
