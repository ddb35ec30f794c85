"""The FastAPI application: CDS Hooks discovery, the two order hooks, feedback, a plain JSON
API, health, readiness, metrics and OpenAPI. A thin shell: reading orders is `fhir`, cards are
`cards`, the record is `store`, trust is `auth`; the recommendation is the library's.

FastAPI because it is pydantic v2 native (our models and the FHIR models validate the same
way), writes the OpenAPI document from the routes, and runs on uvicorn with several workers.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from guidance_rules._version import __version__
from guidance_rules.recommendation.problems import problems_of
from guidance_rules.recommendation.recommender import Recommender
from guidance_rules.rulebase.load import default_knowledge, load

from . import cards, page
from . import feedback as feedback_items
from .auth import AuthConfig, Verifier
from .errors import BadRequest, ServiceError, TooLarge, UnsupportedMedia, operation_outcome
from .fhir import OrderReader
from .logs import event
from .mapping import load_mapping
from .settings import Settings
from .store import Consultation, Store, redact

JSON_TYPES = ("application/json", "application/fhir+json")
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


class HookContext(BaseModel):
    model_config = ConfigDict(extra="allow")
    userId: str
    patientId: str
    encounterId: str | None = None
    selections: list[str] | None = None
    draftOrders: dict[str, Any]


class HookRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    hook: str
    hookInstance: str = Field(min_length=1, max_length=100)
    fhirServer: str | None = None
    context: HookContext
    prefetch: dict[str, Any] | None = None


class FeedbackRequest(BaseModel):
    # the items are checked one by one (feedback.check_all): one bad item never drops the others
    feedback: list[Any] = Field(min_length=1, max_length=100)


def _first_problem(error: ValidationError, where: str) -> BadRequest:
    first = error.errors(include_url=False)[0]
    loc = ".".join(str(p) for p in first["loc"])
    return BadRequest(f"{where}{'.' + loc if loc else ''}: {first['msg']}", where=f"{where}.{loc}" if loc else where)


class Telemetry:
    """Prometheus metrics and one structured log line per request (pure ASGI: no body copies)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("guidance_rules_http_requests", "HTTP requests", ["route", "method", "status"], registry=self.registry)
        self.latency = Histogram(
            "guidance_rules_http_request_seconds",
            "HTTP request latency",
            ["route"],
            buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=self.registry,
        )
        self.cards = Counter("guidance_rules_cards", "cards returned", ["service", "indicator", "status"], registry=self.registry)
        self.feedback = Counter("guidance_rules_feedback", "feedback items stored", ["outcome"], registry=self.registry)
        self.store_errors = Counter("guidance_rules_store_errors", "failed writes to the consultation record", registry=self.registry)


class Observe:
    def __init__(self, app: ASGIApp, telemetry: Telemetry):
        self.app, self.telemetry = app, telemetry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500
        request_id = str(uuid.uuid4())

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", []).append((b"x-request-id", request_id.encode()))
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            seconds = time.perf_counter() - start
            route = getattr(scope.get("route"), "path", "unmatched")
            self.telemetry.requests.labels(route, scope["method"], str(status)).inc()
            self.telemetry.latency.labels(route).observe(seconds)
            event(
                "request",
                method=scope["method"],
                path=scope["path"],
                route=route,
                status=status,
                ms=round(seconds * 1000, 2),
                request_id=request_id,
            )


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app (uvicorn calls this in each worker: `factory=True`)."""
    settings = settings or Settings.from_env()
    knowledge = load(Path(settings.rules_dir)) if settings.rules_dir else default_knowledge()
    mapping = load_mapping(knowledge)
    recommender = Recommender(knowledge)
    reader = OrderReader(mapping)
    store = Store(settings.db_url, patient_key=settings.patient_key)
    verifier: Verifier | None = None
    if settings.insecure_no_auth:
        event(
            "AUTHENTICATION DISABLED: any caller can use this service and write consultation records. "
            "Development only; never expose this instance to a network.",
            logging.WARNING,
        )
    else:
        if not settings.auth_config:
            raise ValueError(
                "JWT verification is on and no trust configuration was given: "
                "pass --auth-config FILE (or --insecure-no-auth for development)"
            )
        config = AuthConfig.load(settings.auth_config)
        verifier = Verifier(config, store)

    def audiences(ids: list[str]) -> list[str]:
        """What a token's `aud` may be: a configured URL, or the endpoint being called below one
        (CDS Hooks: `aud` is the service endpoint), never another service's endpoint."""
        base = list(verifier.config.audience) if verifier is not None else []
        return base + [f"{a.rstrip('/')}/{sid}{tail}" for a in base for sid in ids for tail in ("", "/feedback")]

    # computed once, not per request: by service id, and (None) for the other endpoints
    audience: dict[str | None, list[str]] = {sid: audiences([sid]) for sid in SERVICES} | {None: audiences(list(SERVICES))}
    prefetch = mapping.prefetch()

    telemetry = Telemetry()
    available = settings.available

    app = FastAPI(
        title="guidance-rules CDS Hooks service",
        version=__version__,
        description="Imaging guidance for musculoskeletal and spinal injections, over CDS Hooks and FHIR R4. Decision support only.",
    )
    app.state.store = store
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(settings.cors_origins),
        allow_methods=["GET", "POST"],
        allow_headers=["Authorization", "Content-Type"],
    )
    app.add_middleware(Observe, telemetry=telemetry)

    @app.exception_handler(ServiceError)
    async def _service_error(_request: Request, error: ServiceError) -> JSONResponse:
        if error.status >= 500:
            telemetry.store_errors.inc()
            event("service-error", logging.ERROR, status=error.status, detail=error.message)
        return JSONResponse(
            operation_outcome(error.message, error.code, where=error.where), status_code=error.status, headers=error.headers
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        code = {404: "not-found", 405: "not-supported"}.get(error.status_code, "invalid")
        message = str(error.detail)
        if error.status_code == 404:
            message = f"no endpoint {request.url.path}; see GET /cds-services and /openapi.json"
        return JSONResponse(operation_outcome(message, code), status_code=error.status_code)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0]
        return JSONResponse(operation_outcome(f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"), status_code=400)

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, error: Exception) -> JSONResponse:
        event("internal-error", logging.ERROR, error=f"{type(error).__name__}: {error}")
        return JSONResponse(operation_outcome("internal error; the request was not processed", "exception"), status_code=500)

    async def body_json(request: Request) -> Any:
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype not in JSON_TYPES:
            raise UnsupportedMedia(
                f"content type '{ctype or 'none'}' is not accepted; send {' or '.join(JSON_TYPES)}", code="not-supported"
            )
        declared = request.headers.get("content-length")
        if declared is not None:
            if not declared.isdigit():
                raise BadRequest(f"Content-Length '{declared}' is not a number")
            if int(declared) > settings.max_body:
                raise TooLarge(f"the body is {declared} bytes; the limit is {settings.max_body}")
        size, chunks = 0, []
        async for chunk in request.stream():
            size += len(chunk)
            if size > settings.max_body:
                raise TooLarge(f"the body exceeds the limit of {settings.max_body} bytes")
            chunks.append(chunk)
        raw = b"".join(chunks)
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as error:
            raise BadRequest(f"the body is not valid JSON: {error}", code="structure") from None
        except RecursionError:
            raise BadRequest("the body's JSON is nested too deeply to read", code="structure") from None
        if b"\\ud" in raw.lower():  # an escaped surrogate: only then is the whole-body check worth its cost
            try:
                # a lone surrogate (\udc00) is not text: nothing could store or hash it
                json.dumps(data, ensure_ascii=False).encode("utf-8")
            except UnicodeEncodeError as error:
                bad = error.object[error.start : error.end]
                raise BadRequest(f"the body holds {bad!r}, half of a surrogate pair: not text") from None
        return data

    async def authorise(request: Request, service_id: str | None = None) -> None:
        if verifier is not None:
            await run_in_threadpool(verifier.verify, request.headers.get("authorization"), audience[service_id])

    def service(service_id: str) -> dict[str, Any]:
        if service_id not in SERVICES:
            from .errors import NotFound

            raise NotFound(f"no CDS service '{service_id}'; services: {', '.join(SERVICES)}")
        return SERVICES[service_id]

    @app.get("/cds-services", tags=["CDS Hooks"], summary="Discovery")
    async def discovery() -> dict[str, Any]:
        return {"services": [{"id": sid, **spec, "prefetch": prefetch} for sid, spec in SERVICES.items()]}

    def consult(service_id: str, hook_request: HookRequest, base_url: str) -> dict[str, Any]:
        spec = SERVICES[service_id]
        ctx = hook_request.context
        if spec["hook"] == "order-select" and ctx.selections is None:
            raise BadRequest("context.selections is required for order-select", where="context.selections")
        readings = reader.read(ctx.draftOrders, ctx.selections if spec["hook"] == "order-select" else None, hook_request.prefetch)
        out, rows = [], []
        patient = store.patient_hash(ctx.patientId)
        for reading in readings:
            cid = str(uuid.uuid4())
            case = reading.case(available) if not reading.problems else None
            rec = None
            if case is not None:
                try:
                    rec = recommender.recommend(case)
                except ValidationError as error:
                    reading.problems += [f"{f}: {m}" if f else m for f, m in problems_of(error, knowledge)]
            if rec is None:
                card = cards.unreadable_card(cid, reading, knowledge)
            else:
                link = page.page_url(base_url, case) if case is not None else None
                card = cards.recommendation_card(cid, rec, reading, mapping, knowledge, available, page_link=link)
            rows.append(
                Consultation(
                    id=cid,
                    service_id=service_id,
                    hook=hook_request.hook,
                    hook_instance=hook_request.hookInstance,
                    patient_hash=patient,
                    order_ref=reading.ref,
                    status="recommended" if rec else "unreadable",
                    site=reading.site,
                    case=case if rec else None,
                    modality=rec.modality.value if rec else None,
                    ordered_guidance=guidance.value if (guidance := reading.ordered_guidance) else None,
                    indicator=card["indicator"],
                    ratings=rec.model_dump(mode="json")["ratings"] if rec else None,
                    rules=list(rec.chain_rules()) if rec else [],
                    problems=reading.problems,
                    ruleset_version=knowledge.version,
                    ruleset_digest=knowledge.digest,
                )
            )
            out.append(card)
        store.add_consultations(rows)  # raises StoreUnavailable: no card leaves without its record
        for row in rows:
            telemetry.cards.labels(service_id, row.indicator, row.status).inc()
            event(
                "consultation",
                id=row.id,
                service=service_id,
                hook_instance=row.hook_instance,
                site=row.site,
                modality=row.modality,
                status=row.status,
            )
        return {"cards": out}

    @app.post("/cds-services/{service_id}", tags=["CDS Hooks"], summary="Hook call (order-select or order-sign)")
    async def call(service_id: str, request: Request) -> dict[str, Any]:
        spec = service(service_id)
        await authorise(request, service_id)
        raw = await body_json(request)
        try:
            hook_request = HookRequest.model_validate(raw)
        except ValidationError as error:
            raise _first_problem(error, "request") from None
        if hook_request.hook != spec["hook"]:
            raise BadRequest(f"hook '{hook_request.hook}' sent to the {spec['hook']} service '{service_id}'", where="hook")
        # Behind a reverse proxy request.base_url is the proxy's upstream address: links use the public one.
        base_url = settings.public_url or str(request.base_url)
        return await run_in_threadpool(consult, service_id, hook_request, base_url)

    @app.post("/cds-services/{service_id}/feedback", tags=["CDS Hooks"], summary="Feedback: accepted or overridden")
    async def feedback(service_id: str, request: Request) -> dict[str, Any]:
        service(service_id)
        await authorise(request, service_id)
        raw = await body_json(request)
        try:
            body = FeedbackRequest.model_validate(raw)
        except ValidationError as error:
            raise _first_problem(error, "feedback") from None
        recorded = await run_in_threadpool(store.cards, feedback_items.card_ids(body.feedback))
        items, refused = feedback_items.check_all(body.feedback, recorded, service_id, mapping)
        if not items:
            raise feedback_items.refusal(refused)
        new = await run_in_threadpool(store.add_feedback, items)
        for stored in new:
            telemetry.feedback.labels(stored["outcome"]).inc()
        return {"stored": len(new), "already_stored": len(items) - len(new), "refused": refused}

    @app.post("/api/v1/recommendations", tags=["JSON API"], summary="A Case in, the contract's Recommendation JSON out")
    async def recommend(request: Request) -> Response:
        await authorise(request)
        raw = await body_json(request)
        if not isinstance(raw, dict):
            raise BadRequest("the body must be a JSON object: a Case")
        try:
            text = await run_in_threadpool(recommender.recommend_json, raw)
        except ValidationError as error:
            issues = [
                {"severity": "error", "code": "invalid", "diagnostics": m, "expression": [f]} for f, m in problems_of(error, knowledge)
            ]
            return JSONResponse({"resourceType": "OperationOutcome", "issue": issues}, status_code=400)
        return Response(text, media_type="application/json")

    page.register(app, recommender, available, body_json)

    @app.get("/api/v1/consultations/{consultation_id}", tags=["JSON API"], summary="One consultation record with its feedback")
    async def consultation(consultation_id: str, request: Request) -> dict[str, Any]:
        await authorise(request)
        return await run_in_threadpool(store.consultation, consultation_id)

    @app.get("/healthz", tags=["operations"], summary="Liveness")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "version": __version__}

    @app.get("/readyz", tags=["operations"], summary="Readiness: rule base loaded, database reachable")
    async def ready() -> JSONResponse:
        try:
            await run_in_threadpool(store.ping)
        except ServiceError as error:
            return JSONResponse({"status": "unavailable", "database": error.message}, status_code=503)
        return JSONResponse(
            {
                "status": "ready",
                "ruleset": {"version": knowledge.version, "digest": knowledge.digest},
                "database": redact(store.url).split("://")[0],
            }
        )

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics (this worker)")
    async def metrics() -> Response:
        return Response(generate_latest(telemetry.registry), media_type=CONTENT_TYPE_LATEST)

    event("started", db=redact(store.url), auth="off" if verifier is None else "jwt", ruleset=knowledge.digest, available=list(available))
    return app
