"""Explaining why a case is invalid: one (field, message) per problem, each message saying what
was given, what is wrong and what is allowed (with the closest valid value for a near miss).

Shared by every shell that takes cases from people: the command line, batch and the service.
"""

from __future__ import annotations

import difflib
import json
from typing import Any

from pydantic import ValidationError

from guidance_rules.model import Case
from guidance_rules.rulebase.conditions import CASE_FIELDS
from guidance_rules.rulebase.domain import KnowledgeBase

LIST_FIELDS = tuple(name for name, spec in CASE_FIELDS.items() if spec.is_list)


RULE_BASE_KINDS = ("unknown_site", "contradiction", "required_without_site")


def allowed(field: str, knowledge: KnowledgeBase) -> tuple[str, ...]:
    if field == "site":
        return tuple(knowledge.sites)
    spec = CASE_FIELDS.get(field)
    if spec is None:
        return ()
    return tuple(str(v).lower() if isinstance(v, bool) else str(v) for v in spec.values)


def suggest(value: Any, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or not choices:
        return ""
    close = difflib.get_close_matches(value.lower(), list(choices), n=1, cutoff=0.5)
    return f"; did you mean '{close[0]}'?" if close and close[0] != value else ""


def then(message: str, more: str) -> str:
    """Two clauses of one message: after a question (a suggestion) the next starts a sentence."""
    return f"{message} {more[:1].upper()}{more[1:]}" if message.endswith("?") else f"{message}; {more}"


def short(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def problems_of(error: ValidationError, knowledge: KnowledgeBase) -> list[tuple[str, str]]:
    """Field-named, actionable messages for a pydantic error on `Case`."""
    fields = tuple(Case.model_fields)
    out: list[tuple[str, str]] = []
    for item in error.errors(include_url=False):
        loc = [part for part in item["loc"] if isinstance(part, str)]
        field = loc[0] if loc else ""
        kind, value = item["type"], item.get("input")
        if kind in RULE_BASE_KINDS:  # raised against the rule base: one entry per field involved, same message
            out.append((field, item["msg"]))
            continue
        if kind == "extra_forbidden":
            message = then(f"'{field}' is not a case field{suggest(field, fields)}", f"valid fields: {', '.join(fields)}")
        elif kind == "missing":
            choices = allowed(field, knowledge)
            message = f"required; allowed: {', '.join(choices)}" if choices else "required"
        elif kind.startswith("value_error") or not field:
            message = item["msg"].removeprefix("Value error, ")
            field = field or _field_in(message, fields)
        elif kind == "bool_type" and isinstance(value, str) and value.strip().lower() in ("true", "false"):
            message = f"the text {short(value)} was given; a boolean is expected: {value.strip().lower()} without quotes"
        elif field in Case.model_fields and allowed(field, knowledge):
            choices = allowed(field, knowledge)
            got = (
                f"{short(value)} was given, which is not allowed"
                if kind in ("enum", "bool_type", "bool_parsing")
                else item["msg"].replace("a valid tuple", "a list")
            )
            message = f"{got}; allowed{' items' if field in LIST_FIELDS else ''}: {', '.join(choices)}{suggest(value, choices)}"
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
