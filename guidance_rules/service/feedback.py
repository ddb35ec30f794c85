"""CDS Hooks feedback, item by item: each item is checked against the card it names, a bad item is
answered for itself and never drops the others (issue 20, point 4).

An override reason is one the card offered (our system and code) or the EHR's own (CDS Hooks lets a
client offer its own reasons): the EHR's is kept as `system|code` with its display, so the record
tells the two apart. A reason claiming our system with a code we never offered is refused.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .cards import suggestion_uuid
from .errors import BadRequest, NotFound, ServiceError
from .mapping import Mapping


class ReasonCoding(BaseModel):
    model_config = ConfigDict(extra="allow")
    system: str | None = None  # REQUIRED by CDS Hooks 2.0 (Coding); checked below with a clear message
    code: str
    display: str | None = None


class OverrideReason(BaseModel):
    model_config = ConfigDict(extra="allow")
    reason: ReasonCoding | None = None
    userComment: str | None = Field(default=None, max_length=2000)


class FeedbackItem(BaseModel):
    model_config = ConfigDict(extra="allow")
    card: str = Field(min_length=1, max_length=36)
    outcome: Literal["accepted", "overridden"]
    acceptedSuggestions: list[dict[str, Any]] | None = None
    overrideReason: OverrideReason | None = None
    outcomeTimestamp: str


def card_ids(items: list[Any]) -> set[str]:
    """The card uuids the items name, to read their records in one query."""
    return {i["card"] for i in items if isinstance(i, dict) and isinstance(i.get("card"), str) and 0 < len(i["card"]) <= 36}


def _timestamp(value: str, where: str) -> dt.datetime:
    try:
        stamp = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"outcomeTimestamp '{value}' is not an ISO 8601 instant", where=f"{where}.outcomeTimestamp") from None
    return stamp.astimezone(dt.UTC) if stamp.tzinfo else stamp.replace(tzinfo=dt.UTC)  # the record keeps UTC


def _reason(item: FeedbackItem, row: dict[str, Any], mapping: Mapping, where: str) -> tuple[str | None, str | None]:
    """The (code, display) the record keeps for the item's override reason."""
    reason = item.overrideReason.reason if item.overrideReason else None
    if reason is None:
        return None, None
    ours = mapping.spec.override_reasons
    offered = {r.code: r.display for r in ours.codes}
    if not reason.system:
        raise BadRequest(
            f"override reason {reason.code} names no system (a CDS Hooks Coding requires one); the card's: "
            f"{', '.join(f'{ours.system}|{code}' for code in offered)}",
            where=f"{where}.overrideReason.reason.system",
        )
    if reason.system != ours.system:  # the EHR's own reason
        return f"{reason.system}|{reason.code}", reason.display
    if row["status"] != "recommended":
        raise BadRequest("this card offered no override reasons (it recommended nothing)", where=f"{where}.overrideReason")
    if reason.code not in offered:
        raise BadRequest(
            f"override reason {reason.system}|{reason.code} is not one the card offered; valid: "
            f"{', '.join(f'{ours.system}|{code}' for code in offered)}",
            where=f"{where}.overrideReason.reason",
        )
    return reason.code, reason.display or offered[reason.code]


def check(index: int, raw: Any, recorded: dict[str, dict[str, Any]], service_id: str, mapping: Mapping) -> dict[str, Any]:
    """One item as the store keeps it, or the ServiceError saying why it cannot be."""
    where = f"feedback.{index}"
    try:
        item = FeedbackItem.model_validate(raw)
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise BadRequest(f"{where}{'.' + loc if loc else ''}: {first['msg']}", where=f"{where}.{loc}" if loc else where) from None
    row = recorded.get(item.card)
    if row is None:
        raise NotFound(f"no consultation with card uuid {item.card}; feedback is accepted only for cards this service returned")
    if row["service_id"] != service_id:
        raise BadRequest(f"card {item.card} was returned by '{row['service_id']}', not '{service_id}'", where=f"{where}.card")
    if item.outcome == "accepted" and item.overrideReason is not None:
        raise BadRequest("an accepted card has no overrideReason; send outcome 'overridden'", where=f"{where}.overrideReason")
    if item.outcome == "overridden" and item.acceptedSuggestions:
        raise BadRequest("an overridden card has no acceptedSuggestions", where=f"{where}.acceptedSuggestions")
    code, display = _reason(item, row, mapping, where)
    offered = {suggestion_uuid(item.card, row["modality"])} if row["modality"] else set()
    for j, suggestion in enumerate(item.acceptedSuggestions or []):
        if suggestion.get("id") not in offered:
            raise BadRequest(
                f"accepted suggestion {json.dumps(suggestion.get('id'))} is not the card's suggestion",
                where=f"{where}.acceptedSuggestions.{j}.id",
            )
    return {
        "consultation_id": item.card,
        "outcome": item.outcome,
        "override_code": code,
        "override_display": display,
        "user_comment": item.overrideReason.userComment if item.overrideReason else None,
        "accepted_suggestions_json": json.dumps(item.acceptedSuggestions) if item.acceptedSuggestions is not None else None,
        "outcome_at": _timestamp(item.outcomeTimestamp, where),
    }


def check_all(
    items: list[Any], recorded: dict[str, dict[str, Any]], service_id: str, mapping: Mapping
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The items to store, and each refused one with its index, status and reason."""
    good: list[dict[str, Any]] = []
    refused: list[dict[str, Any]] = []
    for index, raw in enumerate(items):
        try:
            good.append(check(index, raw, recorded, service_id, mapping))
        except ServiceError as error:
            card = raw.get("card") if isinstance(raw, dict) else None
            refused.append({"index": index, "card": card, "status": error.status, "diagnostics": error.message, "where": error.where})
    return good, refused


def refusal(refused: list[dict[str, Any]]) -> ServiceError:
    """No item could be stored: the first item's error (404 only when every item names an unknown card)."""
    first = refused[0]
    more = f" (and {len(refused) - 1} more item(s) refused)" if len(refused) > 1 else ""
    if all(r["status"] == 404 for r in refused):
        return NotFound(first["diagnostics"] + more)
    return BadRequest(first["diagnostics"] + more, where=first["where"])
