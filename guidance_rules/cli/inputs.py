"""Reading cases from JSON and CSV, and explaining why one is invalid.

Every problem is reported as (field, message), where the message names the allowed values
and, for a near miss, the closest one.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from guidance_rules.model import Case, fold_case
from guidance_rules.recommendation.problems import suggest, then
from guidance_rules.rulebase.conditions import BOOL_FIELDS, CASE_FIELDS

LIST_FIELDS = tuple(name for name, spec in CASE_FIELDS.items() if spec.is_list)
# What people type (an option, a file, a spreadsheet's 'Knee,PRP') is matched without regard to
# case and spaces: every case read here goes through the model's public `fold_case`, which the
# library offers its callers too. The library and the JSON API take the contract's values exactly.
MAX_LINE = 100_000  # bytes in one input line; longer lines are rejected, not parsed
BOM = b"\xef\xbb\xbf"  # spreadsheets save UTF-8 CSV with it


class InputError(ValueError):
    """Input that is not a case at all (not JSON, not an object, empty, too long)."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        super().__init__("; ".join(f"{field}: {message}" if field else message for field, message in problems))


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
        elif self.id_column in Case.model_fields:
            ident = data.get(self.id_column)
        else:
            ident = data.pop(self.id_column, None)
        extra = [key for key in data if key not in Case.model_fields]
        if not extra:
            return ident, data, []
        if self.ignore_extra:
            return ident, {k: v for k, v in data.items() if k not in extra}, []
        hint = "to carry it to the output use --id-column NAME, to skip such columns use --extra-columns ignore"
        return ident, data, [(key, then(f"'{key}' is not a case field{suggest(key, tuple(Case.model_fields))}", hint)) for key in extra]


def _lines(stream: BinaryIO) -> Iterator[tuple[int, bytes | None]]:
    """(line number, bytes without the line end) for each line; None for a line longer than
    MAX_LINE, whose bytes are skipped unread so memory stays bounded."""
    number = 0
    while True:
        line = stream.readline(MAX_LINE + 1)
        if not line:
            return
        number += 1
        if len(line) > MAX_LINE and not line.endswith(b"\n"):
            while (rest := stream.readline(MAX_LINE)) and not rest.endswith(b"\n"):
                pass
            yield number, None
            continue
        if number == 1:
            line = line.removeprefix(BOM)
        yield number, line.rstrip(b"\r\n")


def _too_long() -> list[tuple[str, str]]:
    return [("", f"line too long (more than {MAX_LINE} bytes); not read")]


def read_jsonl(stream: BinaryIO, columns: Columns = Columns()) -> Iterator[Record]:
    """One record per non-blank line. Each line's problems (not UTF-8, not JSON, a duplicate
    key, a number too long to convert) become that line's error record; reading goes on."""
    for number, raw in _lines(stream):
        if raw is None:
            yield Record(number, None, _too_long())
            continue
        if not raw.strip():
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


def _invalid_text(cells: list[str]) -> int | None:
    """Index of the first cell holding bytes that were not UTF-8 (decoded as surrogates)."""
    for i, cell in enumerate(cells):
        if any("\udc80" <= ch <= "\udcff" for ch in cell):
            return i
    return None


def read_csv(stream: BinaryIO, columns: Columns = Columns()) -> Iterator[Record]:
    """One record per CSV row, numbered by its first line (a quoted cell may span lines). A row
    of empty cells is still a record; only an entirely empty line is skipped. An --id-column the
    header lacks is an InputError as the header is read, before any record."""
    csv.field_size_limit(MAX_LINE)
    long_lines: set[int] = set()

    def text() -> Iterator[str]:
        for number, raw in _lines(stream):
            if raw is None:
                long_lines.add(number)
                raw = b""
            yield raw.decode("utf-8", "surrogateescape") + "\n"

    reader = csv.reader(text())
    header: list[str] | None = None
    id_index: int | None = None
    header_problems: list[tuple[str, str]] = []
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            yield Record(start, None, [("", f"not a valid CSV row: {error}")])
            continue
        if header is None:
            if not row:
                continue
            header = [cell.strip() for cell in row]
            if columns.id_column and columns.id_column not in header:  # the option is wrong, not the rows
                message = f"'{columns.id_column}' is not a column of the header; its columns: {', '.join(header)}"
                raise InputError([("--id-column", message)])
            id_index = header.index(columns.id_column) if columns.id_column else None
            header_problems = _header_problems(header)
            continue
        if any(n in long_lines for n in range(start, reader.line_num + 1)):
            yield Record(start, None, _too_long())
        elif not row:
            continue  # an empty line
        elif header_problems:
            yield Record(start, None, header_problems)
        elif (bad := _invalid_text(row)) is not None:
            yield Record(start, None, [(header[bad] if bad < len(header) else "", "not UTF-8 text")])
        elif len(row) != len(header):
            yield Record(start, None, [("", f"expected {len(header)} cells as in the header, got {len(row)}")])
        else:
            ident = row[id_index].strip() if id_index is not None else None  # the id is kept even when empty, as text
            cells = {name: csv_value(name, cell) for name, cell in zip(header, row, strict=True) if cell.strip()}
            _, data, problems = columns.split(fold_case(cells))
            yield Record(start, None if problems else data, problems, ident)


def _header_problems(header: list[str]) -> list[tuple[str, str]]:
    """Problems of the header row itself, reported on every row (so none is lost silently)."""
    seen: set[str] = set()
    for name in header:
        if name in seen:
            return [(name, f"column '{name}' appears twice in the header; give each column once")]
        seen.add(name)
    return []


def sniff(head: bytes) -> str:
    """'jsonl' when the first non-blank byte opens a JSON object, else 'csv'."""
    stripped = head.removeprefix(BOM).lstrip()
    return "jsonl" if stripped.startswith(b"{") else "csv"
