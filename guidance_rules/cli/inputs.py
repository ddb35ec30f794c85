"""Reading cases from JSON and CSV, and explaining why one is invalid.

Every problem is reported as (field, message), where the message names the allowed values
and, for a near miss, the closest one.
"""

from __future__ import annotations

import collections
import csv
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from guidance_rules.errors import InputError
from guidance_rules.model import Case, fold_case
from guidance_rules.model.case import FIELD_NAMES
from guidance_rules.recommendation.problems import suggest, then
from guidance_rules.rulebase.conditions import BOOL_FIELDS, CASE_FIELDS

LIST_FIELDS = tuple(name for name, spec in CASE_FIELDS.items() if spec.is_list)
# What people type (an option, a file, a spreadsheet's 'Knee,PRP') is matched without regard to
# case and spaces: every case read here goes through the model's public `fold_case`, which the
# library offers its callers too. The library and the JSON API take the contract's values exactly.
MAX_LINE = 100_000  # bytes in one input line; longer lines are rejected, not parsed
BOM = b"\xef\xbb\xbf"  # spreadsheets save UTF-8 CSV with it


@dataclass(frozen=True)
class Record:
    """One input record: the number of its first line, the id it carries (with `--id-column`),
    and either the case data or the problems found."""

    line: int
    data: dict[str, Any] | None
    problems: list[tuple[str, str]]
    id: Any = None


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object may not name a key twice (json would silently keep the last value)."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise InputError([(key, f"'{key}' is given twice in one object; give it once")])
        out[key] = value
    return out


@dataclass(frozen=True)
class _LongNumber:
    """A JSON integer longer than Python converts, kept as its length so the field holding it
    can be named (int() raised a ValueError naming sys.set_int_max_str_digits, not the field)."""

    digits: int


def _integer(text: str) -> int | _LongNumber:
    limit = sys.get_int_max_str_digits()
    digits = len(text.lstrip("-"))
    return _LongNumber(digits) if limit and digits > limit else int(text)


def _holds_long_number(value: Any) -> _LongNumber | None:
    stack = [value]
    while stack:  # not recursive: the JSON was already limited in depth, this walk need not be
        item = stack.pop()
        if isinstance(item, _LongNumber):
            return item
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return None


def parse_json_case(text: str) -> dict[str, Any]:
    """One case from JSON text; InputError if it is not one JSON object with unique keys."""
    if not text.strip():
        raise InputError([("", "empty input: expected a JSON object describing one case")])
    if len(text) > MAX_LINE:
        raise InputError([("", f"input too long ({len(text)} characters; at most {MAX_LINE})")])
    try:
        data = json.loads(text, object_pairs_hook=_unique_keys, parse_int=_integer)
    except InputError:
        raise
    except RecursionError:
        raise InputError([("", "not valid JSON: nested too deeply")]) from None
    except ValueError as error:  # JSONDecodeError
        raise InputError([("", f"not valid JSON: {error}")]) from None
    if not isinstance(data, dict):
        kind = "a number too long to read" if isinstance(data, _LongNumber) else type(data).__name__
        raise InputError([("", f"expected a JSON object with case fields, got {kind}")])
    # a number too long to read has more digits than the limit: a shorter line cannot hold one
    for key, value in data.items() if len(text) > sys.get_int_max_str_digits() else ():
        if (number := _holds_long_number(value)) is not None:
            message = (
                f"a number {number.digits:,} digits long was given, too long to read (at most {sys.get_int_max_str_digits():,} "
                f"digits); give a value 'guidance-rules schema' allows for '{key}'"
            )
            raise InputError([(key, message)])
    return fold_case(data)


def csv_value(field: str, raw: str) -> Any:
    """CSV cells are text: booleans are true/false, lists are separated by ';' (words are folded
    with the rest of the row by `fold_case`)."""
    text = raw.strip()
    if field in LIST_FIELDS:
        return [part for part in text.split(";") if part.strip()]
    if field in BOOL_FIELDS:
        return {"true": True, "false": False}.get(text.lower(), text)
    return text


@dataclass(frozen=True)
class Columns:
    """What to do with input keys that are not case fields: carry one as the record's id, and
    either reject the others (the default: a misspelt field must not be dropped silently) or
    ignore them."""

    id_column: str | None = None
    ignore_extra: bool = False

    def split(self, data: dict[str, Any]) -> tuple[Any, dict[str, Any], list[tuple[str, str]]]:
        """(id, case fields, problems) of one record's keys. A case field named as the id column
        stays in the case too: taking it out changed the case and every answer."""
        if not self.id_column:
            ident = None
        elif self.id_column in FIELD_NAMES:
            ident = data.get(self.id_column)
        else:
            ident = data.pop(self.id_column, None)
        extra = [key for key in data if key not in FIELD_NAMES]
        if not extra:
            return ident, data, []
        if self.ignore_extra:
            return ident, {k: v for k, v in data.items() if k not in extra}, []
        hint = "to carry it to the output use --id-column NAME, to skip such columns use --extra-columns ignore"
        return ident, data, [(key, then(f"'{key}' is not a case field{suggest(key, tuple(Case.model_fields))}", hint)) for key in extra]


def _lines(stream: BinaryIO, seen: Lines) -> Iterator[tuple[int, bytes | None]]:
    """(line number, bytes without the line end) for each line; None for a line longer than
    MAX_LINE, whose bytes are skipped unread so memory stays bounded."""
    number = 0
    while True:
        line = stream.readline(MAX_LINE + 1)
        if not line:
            return
        number += 1
        seen.read, seen.bytes = number, seen.bytes + len(line)
        if len(line) > MAX_LINE and not line.endswith(b"\n"):
            while (rest := stream.readline(MAX_LINE)) and not rest.endswith(b"\n"):
                seen.bytes += len(rest)
            seen.bytes += len(rest)
            yield number, None
            continue
        if number == 1:
            line = line.removeprefix(BOM)
        yield number, line.rstrip(b"\r\n")


def _too_long() -> list[tuple[str, str]]:
    return [("", f"line too long (more than {MAX_LINE} bytes); not read")]


def read_jsonl(stream: BinaryIO, columns: Columns = Columns(), seen: Lines | None = None) -> Iterator[Record]:
    """One record per non-blank line. Each line's problems (not UTF-8, not JSON, a duplicate
    key, a number too long to convert) become that line's error record; reading goes on."""
    seen = Lines() if seen is None else seen
    for number, raw in _lines(stream, seen):
        if raw is None:
            yield Record(number, None, _too_long())
            continue
        if not raw.strip():
            seen.blank += 1
            continue  # blank lines separate nothing in JSON Lines; they are not records
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            yield Record(number, None, [("", f"not UTF-8 text: byte 0x{raw[error.start]:02x} at position {error.start + 1}")])
            continue
        try:
            data = parse_json_case(text)
        except InputError as error:
            yield Record(number, None, error.problems)
            continue
        ident, data, problems = columns.split(data)
        yield Record(number, None if problems else data, problems, ident)


@dataclass
class Lines:
    """What the input's lines became, for the summary and the progress bar: every line read is
    the header, blank, the first line of a record, or a further line of a record (a quoted cell
    spanning lines)."""

    read: int = 0
    bytes: int = 0
    header: int = 0
    blank: int = 0
    continued: int = 0


@dataclass(frozen=True)
class CsvForm:
    """How a CSV file is written: its delimiter and its text encoding (Python's codec name)."""

    delimiter: str = ","
    encoding: str = "utf-8"


DELIMITERS = (",", ";", "\t")
DELIMITER_NAMES = {",": "','", ";": "';'", "\t": "tab"}
ENCODING_NAMES = {"utf-8": "UTF-8", "cp1252": "Windows-1252"}


def detect_csv(head: bytes, delimiter: str | None = None, encoding: str | None = None) -> tuple[CsvForm, list[str]]:
    """The form of a CSV file from its first bytes, and what was detected (to be said).

    The encoding is UTF-8 when the head has a BOM or decodes as UTF-8, else Windows-1252 (what
    Excel saves in Western Europe). The delimiter is the one of ',' ';' tab that the header line
    holds most often outside quotes, ',' when it holds none."""
    found = []
    if encoding is None:
        try:
            head.decode("utf-8")
            encoding = "utf-8"
        except UnicodeDecodeError as error:  # a multi-byte character cut at the end of the head is still UTF-8
            encoding = "utf-8" if error.start >= len(head) - 3 and error.reason == "unexpected end of data" else "cp1252"
        found.append(f"encoding {ENCODING_NAMES[encoding]}" + (" (not UTF-8 text)" if encoding == "cp1252" else ""))
    if delimiter is None:
        first = next((line for line in head.removeprefix(BOM).splitlines() if line.strip()), b"").decode(encoding, "replace")
        outside = "".join(first.split('"')[::2])  # the header's text outside quoted cells
        counts = {d: outside.count(d) for d in DELIMITERS}
        delimiter = max(DELIMITERS, key=lambda d: counts[d]) if any(counts.values()) else ","
        found.append(f"delimiter {DELIMITER_NAMES[delimiter]}")
    return CsvForm(delimiter, encoding), found


def _quote_open(line: str, delimiter: str, open_: bool) -> bool:
    """Whether a quoted cell is still open at the end of `line`, given whether one was at its
    start, as the csv module reads it: a quote opens a cell only at the cell's start, inside one
    '""' is a quote, and after the closing quote the cell runs on to the delimiter."""
    if '"' not in line:
        return open_
    at = 0
    while True:
        if open_:
            quote = line.find('"', at)
            if quote < 0:
                return True
            if line.startswith('"', quote + 1):
                at = quote + 2
                continue
            open_, at = False, quote + 1
        elif line.startswith('"', at):
            open_, at = True, at + 1
            continue
        cell_end = line.find(delimiter, at)
        if cell_end < 0:
            return False
        at = cell_end + 1


Held = tuple[int, str | None]  # (line number, its text without the line end; None for a line too long)


def _rows(lines: Iterator[Held], delimiter: str, seen: Lines) -> Iterator[tuple[int, str | list[str]]]:
    """(first line number, the row's cells or the reason it has none) for each row.

    A quoted cell may span lines, but never past MAX_LINE bytes in all or the end of the input:
    such a row is its first line's error, and reading resumes at the line after it (before, one
    unclosed quote swallowed every row after it into one cell). Lines held while looking for the
    closing quote are read again from the held copy, so memory stays within MAX_LINE."""
    again: collections.deque[Held] = collections.deque()

    def pull() -> Held | None:
        return again.popleft() if again else next(lines, None)

    while (item := pull()) is not None:
        number, text = item
        if text is None:
            yield number, f"line too long (more than {MAX_LINE} bytes); not read"
            continue
        held, size, unclosed = [text], len(text), None
        still_open = _quote_open(text, delimiter, False)
        while still_open:
            following = pull()
            if following is None or following[1] is None or size + len(following[1]) > MAX_LINE:
                unclosed = "before the end of the input" if following is None else f"within {MAX_LINE:,} bytes"
                again.extendleft(reversed([*((number + k, t) for k, t in enumerate(held[1:], 1)), *([following] if following else [])]))
                break
            held.append(following[1])
            size += len(following[1])
            still_open = _quote_open(following[1], delimiter, True)
        if unclosed:
            yield number, f"a quoted cell opened on this line is not closed {unclosed}; the row was not read (check its quotes)"
            continue
        if len(held) == 1 and not text:
            seen.blank += 1
            continue
        seen.continued += len(held) - 1
        if len(held) == 1 and '"' not in text and "\r" not in text:
            yield number, text.split(delimiter)  # what the csv module makes of a line without quotes, faster
            continue
        try:
            yield number, next(csv.reader(["\n".join(held)], delimiter=delimiter), [])
        except csv.Error as error:
            yield number, f"not a valid CSV row: {error}"


def _invalid_text(cells: list[str]) -> int | None:
    """Index of the first cell holding bytes the encoding does not define (decoded as surrogates)."""
    for i, cell in enumerate(cells):
        if any("\udc80" <= ch <= "\udcff" for ch in cell):
            return i
    return None


def read_csv(stream: BinaryIO, columns: Columns = Columns(), form: CsvForm = CsvForm(), seen: Lines | None = None) -> Iterator[Record]:
    """One record per CSV row, numbered by its first line (a quoted cell may span lines). A row
    of empty cells is still a record; only an entirely empty line is skipped. A header that does
    not fit the options (a column that is no case field, a column named twice, a missing
    --id-column) is one InputError as the header is read, before any record."""
    seen = Lines() if seen is None else seen

    def text() -> Iterator[Held]:
        for number, raw in _lines(stream, seen):
            yield number, None if raw is None else raw.decode(form.encoding, "surrogateescape")

    header: list[str] | None = None
    id_index: int | None = None
    for number, row in _rows(text(), form.delimiter, seen):
        if header is None:
            if isinstance(row, str):
                raise InputError([("header", f"line {number}: {row}")])
            seen.header += 1
            header = [cell.strip() for cell in row]
            if problems := _header_problems(header, columns, form):
                raise InputError(problems)
            id_index = header.index(columns.id_column) if columns.id_column else None
        elif isinstance(row, str):
            yield Record(number, None, [("", row)])
        elif (bad := _invalid_text(row)) is not None:
            yield Record(number, None, [(header[bad] if bad < len(header) else "", _not_text(form))])
        elif len(row) != len(header):
            yield Record(number, None, [("", f"expected {len(header)} cells as in the header, got {len(row)}")])
        else:
            ident = row[id_index].strip() if id_index is not None else None  # the id is kept even when empty, as text
            cells = {name: csv_value(name, cell) for name, cell in zip(header, row, strict=True) if cell.strip()}
            _, data, problems = columns.split(fold_case(cells))
            yield Record(number, None if problems else data, problems, ident)


def _not_text(form: CsvForm) -> str:
    if form.encoding == "utf-8":
        return "not UTF-8 text; if the file was saved as Windows-1252 (Excel in Western Europe), give --encoding windows-1252"
    return f"not {ENCODING_NAMES.get(form.encoding, form.encoding)} text; give the file's encoding with --encoding"


def _header_problems(header: list[str], columns: Columns, form: CsvForm) -> list[tuple[str, str]]:
    """What is wrong with the header row itself, said once before any record: every row would
    carry the same error, and the way out is an option, not an edit of every row."""
    problems = []
    twice = sorted({name for name in header if header.count(name) > 1})
    if twice:
        problems.append(("header", f"column {_names(twice)} appears twice in the header; give each column once"))
    if columns.id_column and columns.id_column not in header:  # the option is wrong, not the rows
        problems.append(("--id-column", f"'{columns.id_column}' is not a column of the header; its columns: {', '.join(header)}"))
    unknown = list(dict.fromkeys(name for name in header if name and name not in Case.model_fields and name != columns.id_column))
    if unknown and not columns.ignore_extra:
        others = [d for d in DELIMITERS if d != form.delimiter and any(d in name for name in unknown)]
        hints = not others  # 'site;injectate' is two columns run together, not a misspelt 'injectate'
        named = ", ".join(
            f"'{name}'" + (f" ({hint[2:]})" if hints and (hint := suggest(name, tuple(Case.model_fields))) else "") for name in unknown
        )
        way = (
            f"the header looks separated by {DELIMITER_NAMES[others[0]]}: give --delimiter {_option_text(others[0])}"
            if others
            else "to carry one to the output use --id-column NAME, to skip such columns use --extra-columns ignore"
        )
        what = f"column {named} is not a case field" if len(unknown) == 1 else f"columns {named} are not case fields"
        problems.append(("header", f"{what}; {way}"))
    return problems


def _names(names: list[str]) -> str:
    return ", ".join(f"'{name}'" for name in names)


def _option_text(delimiter: str) -> str:
    return "tab" if delimiter == "\t" else f"'{delimiter}'"


def sniff(head: bytes) -> str:
    """'jsonl' when the first non-blank byte opens a JSON object, else 'csv'."""
    stripped = head.removeprefix(BOM).lstrip()
    return "jsonl" if stripped.startswith(b"{") else "csv"
