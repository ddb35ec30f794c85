"""What the routes need, built once per worker by `create_app`, and handed to them as FastAPI
dependencies (so a test can override one, and a route says what it uses)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from guidance_rules.recommendation.recommender import Recommender
from guidance_rules.rulebase.domain import KnowledgeBase
from guidance_rules.rulebase.load import default_knowledge, load

from .auth import AuthConfig, Verifier
from .errors import NotFound
from .fhir import OrderReader
from .logs import event
from .mapping import Mapping, load_mapping
from .settings import Settings
from .store import Store
from .telemetry import Telemetry

SERVICES = {
    "guidance-rules-order-select": {
        "hook": "order-select",
        "title": "Imaging guidance for injections",
        "description": "While an injection is being ordered: which imaging guidance (ultrasound, fluoroscopy, both, landmark) "
        "the case calls for, and why, with sources.",
    },
    "guidance-rules-order-sign": {
        "hook": "order-sign",
        "title": "Imaging guidance check before signing",
        "description": "Before injection orders are signed: does the ordered guidance match the recommended one?",
    },
}
OTHER = "other"  # the audience key of the endpoints that are not a hook service's
CONSULTATIONS = "consultations"  # the consultation API's: the record has an audience of its own


@dataclass
class Services:
    settings: Settings
    knowledge: KnowledgeBase
    mapping: Mapping
    recommender: Recommender
    reader: OrderReader
    store: Store
    verifier: Verifier | None
    telemetry: Telemetry = field(default_factory=Telemetry)
    audience: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def build(cls, settings: Settings) -> Services:
        knowledge = load(Path(settings.rules_dir)) if settings.rules_dir else default_knowledge()
        mapping = load_mapping(knowledge)
        store = Store(settings.db_url, patient_key=settings.patient_key)
        services = cls(settings, knowledge, mapping, Recommender(knowledge), OrderReader(mapping), store, _verifier(settings, store))
        services.audience = services.audiences()
        return services

    def audiences(self) -> dict[str, list[str]]:
        """What a token's `aud` may be, computed once: a configured URL, or the endpoint being
        called below one (CDS Hooks: `aud` is the service endpoint), never another service's
        endpoint; the consultation API only its own audience."""
        config = self.verifier.config if self.verifier is not None else None
        base = list(config.audience) if config else []

        def below(ids: list[str]) -> list[str]:
            return base + [f"{a.rstrip('/')}/{sid}{tail}" for a in base for sid in ids for tail in ("", "/feedback")]

        return {sid: below([sid]) for sid in SERVICES} | {
            OTHER: below(list(SERVICES)),
            CONSULTATIONS: list(config.consultations_audience) if config else [],
        }


def _verifier(settings: Settings, store: Store) -> Verifier | None:
    if settings.insecure_no_auth:
        event(
            "AUTHENTICATION DISABLED: any caller can use this service and write consultation records. "
            "Development only; never expose this instance to a network.",
            logging.WARNING,
        )
        return None
    if not settings.auth_config:
        raise ValueError(
            "JWT verification is on and no trust configuration was given: pass --auth-config FILE (or --insecure-no-auth for development)"
        )
    return Verifier(AuthConfig.load(settings.auth_config), store)


def services(request: Request) -> Services:
    built: Services = request.app.state.services
    return built


Built = Annotated[Services, Depends(services)]


def hook_service(service_id: str) -> dict[str, str]:
    """The CDS service the path names (404 for any other)."""
    if service_id not in SERVICES:
        raise NotFound(f"no CDS service '{service_id}'; services: {', '.join(SERVICES)}")
    return SERVICES[service_id]


async def _verify(built: Services, request: Request, key: str) -> dict[str, Any] | None:
    if built.verifier is None:
        return None
    return await run_in_threadpool(built.verifier.verify, request.headers.get("authorization"), built.audience[key])


async def hook_caller(service_id: str, request: Request, built: Built) -> dict[str, Any] | None:
    """The EHR's verified token claims for a call to this hook service (401 otherwise)."""
    hook_service(service_id)
    return await _verify(built, request, service_id)


async def api_caller(request: Request, built: Built) -> dict[str, Any] | None:
    return await _verify(built, request, OTHER)


async def record_reader(request: Request, built: Built) -> dict[str, Any] | None:
    return await _verify(built, request, CONSULTATIONS)
