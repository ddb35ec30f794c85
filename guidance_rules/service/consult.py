"""The two things a hook service does, as plain functions of what they use: a consultation
(orders in, cards out, each card recorded) and feedback on a card. The routes only call them."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import ValidationError

from guidance_rules.recommendation.problems import problems_of

from . import cards, page
from . import feedback as feedback_items
from .context import SERVICES, Services
from .errors import BadRequest
from .fhir import OrderReading
from .logs import event
from .models import FeedbackRequest, HookRequest
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
        "ratings": rec.model_dump(mode="json", include={"ratings"})["ratings"] if rec else None,  # not the whole explanation
        "rules": list(rec.chain_rules()) if rec else [],
        "problems": reading.problems,
        "ruleset_version": knowledge.version,
        "ruleset_digest": knowledge.digest,
    }
    return card, row


def record_feedback(services: Services, service_id: str, body: FeedbackRequest) -> dict[str, Any]:
    """Check each item against the card it names (feedback.check_all), store the good ones (a retried
    item is stored once) and name each refused one; refused as a whole only when no item is good."""
    recorded = services.store.cards(feedback_items.card_ids(body.feedback))
    items, refused = feedback_items.check_all(body.feedback, recorded, service_id, services.mapping)
    if not items:
        raise feedback_items.refusal(refused)
    new = services.store.add_feedback(items)
    for stored in new:
        services.telemetry.feedback.labels(stored["outcome"]).inc()
    return {"stored": len(new), "already_stored": len(items) - len(new), "refused": refused}
