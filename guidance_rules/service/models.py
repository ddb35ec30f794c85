"""The service's request and response bodies, as pydantic models: FastAPI validates the
requests with them and writes them into /openapi.json. Names follow CDS Hooks 2.0. Models of
what the EHR sends allow extra members (the specification lets clients add them)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class HookContext(BaseModel):
    model_config = ConfigDict(extra="allow")
    userId: str
    patientId: str
    encounterId: str | None = None
    selections: list[str] | None = None
    draftOrders: dict[str, Any] = Field(description="a FHIR R4 Bundle of the draft orders")


class HookRequest(BaseModel):
    """A CDS Hooks call (order-select or order-sign)."""

    model_config = ConfigDict(extra="allow")
    hook: str
    hookInstance: str = Field(min_length=1, max_length=100)
    fhirServer: str | None = None
    context: HookContext
    prefetch: dict[str, Any] | None = None


class FeedbackRequest(BaseModel):
    # each item is checked on its own (feedback.check_all, against feedback.FeedbackItem): one bad
    # item is refused by itself and never drops the others
    feedback: list[Any] = Field(
        min_length=1, max_length=100, description="CDS Hooks feedback items (card, outcome, overrideReason, outcomeTimestamp, ...)"
    )


class RefusedItem(BaseModel):
    index: int = Field(description="the item's position in the request's feedback list")
    card: Any = Field(description="the card uuid the item named, as sent")
    status: int = Field(description="the HTTP status the item alone would have got")
    diagnostics: str
    where: str | None = None


class FeedbackResult(BaseModel):
    stored: int = Field(description="items stored now")
    already_stored: int = Field(description="items stored by an earlier (retried) request")
    refused: list[RefusedItem] = Field(description="items not stored, each with why")


class Issue(BaseModel):
    severity: Literal["fatal", "error", "warning", "information"]
    code: str
    diagnostics: str
    expression: list[str] | None = None


class OperationOutcome(BaseModel):
    """Every 4xx and 5xx answer: what was given, what went wrong, what would be valid."""

    resourceType: Literal["OperationOutcome"]
    issue: list[Issue] = Field(min_length=1)


class Source(BaseModel):
    model_config = ConfigDict(extra="allow")
    label: str
    url: str | None = None
    topic: dict[str, Any] | None = None


class Link(BaseModel):
    model_config = ConfigDict(extra="allow")
    label: str
    url: str
    type: Literal["absolute", "smart"]


class Card(BaseModel):
    """A CDS Hooks card (the members this service fills)."""

    model_config = ConfigDict(extra="allow")
    uuid: str
    summary: str = Field(max_length=140)
    indicator: Literal["info", "warning", "critical"]
    detail: str | None = None
    source: Source
    suggestions: list[dict[str, Any]] | None = None
    selectionBehavior: Literal["at-most-one", "any"] | None = None
    overrideReasons: list[dict[str, Any]] | None = None
    links: list[Link] | None = None


class Cards(BaseModel):
    cards: list[Card]


class Service(BaseModel):
    id: str
    hook: str
    title: str
    description: str
    prefetch: dict[str, str]


class Discovery(BaseModel):
    services: list[Service]


class Health(BaseModel):
    status: Literal["ok"]
    version: str


class Ruleset(BaseModel):
    version: str
    digest: str


class Ready(BaseModel):
    status: Literal["ready"]
    ruleset: Ruleset
    database: str


class NotReady(BaseModel):
    status: Literal["unavailable"]
    database: str = Field(description="why a record cannot be written now")


class FeedbackRecord(BaseModel):
    model_config = ConfigDict(extra="allow")
    consultation_id: str
    outcome: Literal["accepted", "overridden"]
    override_code: str | None
    outcome_at: str | None
    received_at: str


class ConsultationRecord(BaseModel):
    """One consultation as recorded, with the feedback on its card."""

    model_config = ConfigDict(extra="allow")
    id: str
    created_at: str
    service_id: str
    hook: str
    hook_instance: str
    status: Literal["recommended", "unreadable"]
    site: str | None
    modality: str | None
    indicator: str
    ruleset_version: str
    ruleset_digest: str
    case: dict[str, Any] | None
    ratings: dict[str, Any] | None
    rules: list[str] | None
    problems: list[str] | None
    feedback: list[FeedbackRecord]


ERROR_DESCRIPTIONS = {
    400: "the request is malformed or invalid (the field is named), or its Host is not one this service answers to",
    401: "no valid token from a trusted EHR",
    404: "no such service, card or consultation",
    408: "the request's body did not arrive in time",
    413: "the body is over the limit",
    415: "the body is not JSON",
    503: "the consultation record cannot be written now: no card is returned without its record",
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The error answers a route declares in /openapi.json, each an OperationOutcome."""
    return {status: {"model": OperationOutcome, "description": ERROR_DESCRIPTIONS[status]} for status in statuses}
