"""Reading cases from JSON and CSV, and explaining why one is invalid.

Every problem is reported as (field, message), where the message names the allowed values
and, for a near miss, the closest one.
"""

from __future__ import annotations

import csv
import difflib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TextIO

from pydantic import ValidationError

from .conditions import CASE_FIELDS
from .knowledge import KnowledgeBase
from .model import Case

LIST_FIELDS = tuple(name for name, spec in CASE_FIELDS.items() if spec.is_list)
BOOL_FIELDS = tuple(name for name, spec in CASE_FIELDS.items() if spec.values == (False, True))
MAX_LINE = 100_000  # characters in one input line; longer lines are rejected, not parsed


class InputError(ValueError):
    """Input that is not a case at all (not JSON, not an object, empty, too long)."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        super().__init__("; ".join(f"{field}: {message}" if field else message for field, message in problems))


@dataclass(frozen=True)
class Record:
    """One input line: its number and either the case data or the problems found."""

    line: int
    data: dict[str, Any] | None
    problems: list[tuple[str, str]]


def allowed(field: str, knowledge: KnowledgeBase) -> tuple[str, ...]:
    if field == "site":
        return tuple(knowledge.sites)
    spec = CASE_FIELDS.get(field)
    if spec is None:
        return ()
    return tuple(str(v).lower() if isinstance(v, bool) else str(v) for v in spec.values)


def _suggest(value: Any, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or not choices:
        return ""
    close = difflib.get_close_matches(value, list(choices), n=1, cutoff=0.5)
    return f"; did you mean '{close[0]}'?" if close else ""


def problems_of(error: ValidationError, knowledge: KnowledgeBase) -> list[tuple[str, str]]:
    """Field-named, actionable messages for a pydantic error on `Case`."""
    fields = tuple(Case.model_fields)
    out = []
    for item in error.errors(include_url=False):
        loc = [part for part in item["loc"] if isinstance(part, str)]
        field = loc[0] if loc else ""
        kind, value = item["type"], item.get("input")
        if kind == "extra_forbidden":
            message = f"unknown field{_suggest(field, fields)} Valid fields: {', '.join(fields)}"
        elif kind == "missing":
            message = "required"
        elif kind.startswith("value_error") or not field:
            message = item["msg"].removeprefix("Value error, ")
            field = field or _field_in(message, fields)
        elif field in Case.model_fields and allowed(field, knowledge):
            choices = allowed(field, knowledge)
            got = (
                f"{_short(value)} is not allowed"
                if kind in ("enum", "bool_type", "bool_parsing")
                else item["msg"].replace("a valid tuple", "a list")
            )
            message = f"{got}; allowed{' items' if field in LIST_FIELDS else ''}: {', '.join(choices)}{_suggest(value, choices)}"
        else:
            message = item["msg"]
        out.append((field, message))
    return out


def _field_in(message: str, fields: tuple[str, ...]) -> str:
    """A whole-case error (contradiction, missing region) still names its field first."""
    for field in fields:
        if message.startswith(field) or f"({field}=" in message:
            return field
    return "case"


def _short(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def parse_json_case(text: str) -> dict[str, Any]:
    """One case from JSON text; InputError if it is not a JSON object."""
    if not text.strip():
        raise InputError([("", "empty input: expected a JSON object describing one case")])
    if len(text) > MAX_LINE:
        raise InputError([("", f"input too long ({len(text)} characters; at most {MAX_LINE})")])
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as error:
        raise InputError([("", f"not valid JSON: {error}")]) from None
    if not isinstance(data, dict):
        raise InputError([("", f"expected a JSON object with case fields, got {type(data).__name__}")])
    return data


def csv_value(field: str, raw: str) -> Any:
    """CSV cells are text: booleans are true/false, lists are separated by ';'."""
    text = raw.strip()
    if field in LIST_FIELDS:
        return [part.strip() for part in text.split(";") if part.strip()]
    if field in BOOL_FIELDS:
        lowered = text.lower()
        return {"true": True, "false": False}.get(lowered, text)
    return text


def read_jsonl(stream: TextIO) -> Iterator[Record]:
    for number, line in enumerate(stream, 1):
        if not line.strip():
            yield Record(number, None, [("", "empty line: expected a JSON object")])
            continue
        try:
            yield Record(number, parse_json_case(line), [])
        except InputError as error:
            yield Record(number, None, error.problems)


def read_csv(stream: TextIO) -> Iterator[Record]:
    reader = csv.reader(stream)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        return
    for row in reader:
        number = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            yield Record(number, None, [("", f"expected {len(header)} cells as in the header, got {len(row)}")])
            continue
        data = {name: csv_value(name, cell) for name, cell in zip(header, row, strict=True) if cell.strip()}
        yield Record(number, data, [])
