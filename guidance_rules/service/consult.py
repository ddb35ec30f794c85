"""The two things a hook service does, as plain functions of what they use: a consultation
(orders in, cards out, each card recorded) and feedback on a card. The routes only call them."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

from pydantic import ValidationError

from guidance_rules.recommendation.problems import problems_of

from . import cards, page
from .context import SERVICES, Services
from .errors import BadRequest
from .fhir import OrderReading
from .logs import event
from .models import FeedbackItem, FeedbackRequest, HookRequest
from .store import Consultation


def consult(services: Services, service_id: str, hook_request: HookRequest, base_url: str) -> dict[str, Any]:
    """One card per (selected) injection order; every card is recorded before any is returned
    (the store raises StoreUnavailable otherwise: no card leaves without its record)."""
    spec = SERVICES[service_id]
    ctx = hook_request.context
    if hook_request.hook != spec["hook"]:
        raise BadRequest(f"hook '{hook_request.hook}' sent to the {spec['hook']} service '{service_id}'", where="hook")
    if spec["hook"] == "order-select" and ctx.selections is None:
        raise BadRequest("context.selections is required for order-select", where="context.selections")
    selections = ctx.selections if spec["hook"] == "order-select" else None
    readings = services.reader.read(ctx.draftOrders, selections, hook_request.prefetch)
    patient = services.store.patient_hash(ctx.patientId)
    out, rows = [], []
    for reading in readings:
        card, row = _card(services, reading, base_url)
        out.append(card)
        rows.append(
            Consultation(
                service_id=service_id, hook=hook_request.hook, hook_instance=hook_request.hookInstance, patient_hash=patient, **row
            )
        )
    services.store.add_consultations(rows)
    for record in rows:
        services.telemetry.cards.labels(service_id, record.indicator, record.status).inc()
        event(
            "consultation",
            id=record.id,
            service=service_id,
            hook_instance=record.hook_instance,
            site=record.site,
            modality=record.modality,
            status=record.status,
        )
    return {"cards": out}


def _card(services: Services, reading: OrderReading, base_url: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The card for one order, and what its record holds besides the call's own fields."""
    knowledge, available = services.knowledge, services.settings.available
    cid = str(uuid.uuid4())
    case = reading.case(available) if not reading.problems else None
    rec = None
    if case is not None:
        try:
            rec = services.recommender.recommend(case)
        except ValidationError as error:
            reading.problems += [f"{f}: {m}" if f else m for f, m in problems_of(error, knowledge)]
    if rec is None:
        card = cards.unreadable_card(cid, reading, knowledge)
    else:
        link = page.page_url(base_url, case) if case is not None else None
        card = cards.recommendation_card(cid, rec, reading, services.mapping, knowledge, available, page_link=link)
    row = {
        "id": cid,
        "order_ref": reading.ref,
        "status": "recommended" if rec else "unreadable",
        "site": reading.site,
        "case": case if rec else None,
        "modality": rec.modality.value if rec else None,
        "ordered_guidance": guidance.value if (guidance := reading.ordered_guidance) else None,
        "indicator": card["indicator"],
        "ratings": rec.model_dump(mode="json")["ratings"] if rec else None,
        "rules": [s.rule for s in rec.reasoning] if rec else [],
        "problems": reading.problems,
        "ruleset_version": knowledge.version,
        "ruleset_digest": knowledge.digest,
    }
    return card, row


def record_feedback(services: Services, service_id: str, body: FeedbackRequest) -> dict[str, int]:
    """Check each item against the card it names (its service, the reasons and the suggestion it
    offered), then store them; a retried item is stored once."""
    recorded = services.store.cards({item.card for item in body.feedback})
    items = [_feedback_row(services, service_id, i, item, recorded.get(item.card)) for i, item in enumerate(body.feedback)]
    new = services.store.add_feedback(items)
    for stored in new:
        services.telemetry.feedback.labels(stored["outcome"]).inc()
    return {"stored": len(new), "already_stored": len(items) - len(new)}


def _feedback_row(services: Services, service_id: str, i: int, item: FeedbackItem, row: dict[str, Any] | None) -> dict[str, Any]:
    where = f"feedback.{i}"
    spec = services.mapping.spec.override_reasons
    reasons = {r.code: r.display for r in spec.codes}
    if row is not None and row["service_id"] != service_id:
        raise BadRequest(f"card {item.card} was returned by '{row['service_id']}', not '{service_id}'", where=f"{where}.card")
    reason = item.overrideReason.reason if item.overrideReason else None
    if item.outcome == "accepted" and item.overrideReason is not None:
        raise BadRequest("an accepted card has no overrideReason; send outcome 'overridden'", where=f"{where}.overrideReason")
    if item.outcome == "overridden" and item.acceptedSuggestions:
        raise BadRequest("an overridden card has no acceptedSuggestions", where=f"{where}.acceptedSuggestions")
    if reason is not None:
        if row is not None and row["status"] != "recommended":
            raise BadRequest("this card offered no override reasons (it recommended nothing)", where=f"{where}.overrideReason")
        if reason.system != spec.system or reason.code not in reasons:
            raise BadRequest(
                f"override reason {reason.system or '(no system)'}|{reason.code} is not one the card offered; "
                f"valid: {', '.join(f'{spec.system}|{code}' for code in reasons)}",
                where=f"{where}.overrideReason.reason",
            )
    offered = {cards.suggestion_uuid(item.card, row["modality"])} if row is not None and row["modality"] else set()
    for j, suggestion in enumerate(item.acceptedSuggestions or []):
        if suggestion.get("id") not in offered:
            raise BadRequest(
                f"accepted suggestion {json.dumps(suggestion.get('id'))} is not the card's suggestion",
                where=f"{where}.acceptedSuggestions.{j}.id",
            )
    return {
        "consultation_id": item.card,
        "outcome": item.outcome,
        "override_code": reason.code if reason else None,
        "override_display": (reason.display or reasons.get(reason.code)) if reason else None,
        "user_comment": item.overrideReason.userComment if item.overrideReason else None,
        "accepted_suggestions_json": json.dumps(item.acceptedSuggestions) if item.acceptedSuggestions is not None else None,
        "outcome_at": _timestamp(item.outcomeTimestamp, i),
    }


def _timestamp(value: str, index: int) -> dt.datetime:
    try:
        stamp = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"outcomeTimestamp '{value}' is not an ISO 8601 instant", where=f"feedback.{index}.outcomeTimestamp") from None
    return stamp.astimezone(dt.UTC) if stamp.tzinfo else stamp.replace(tzinfo=dt.UTC)  # the record keeps UTC
