"""The FastAPI application: CDS Hooks discovery, the two order hooks, feedback, a plain JSON
API, the clinicians' page, health, readiness, metrics and OpenAPI. A thin shell: the routes are
in `routes` (one router per area), what they use is built once (`context.Services`) and handed to
them as dependencies, consultation and feedback are plain functions (`consult`), reading orders
is `fhir`, cards are `cards`, the record is `store`, trust is `auth`.

FastAPI because it is pydantic v2 native (our models and the FHIR models validate the same
way), writes the OpenAPI document from the typed routes, and runs on uvicorn with several workers.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from guidance_rules._version import __version__

from . import page
from .body import JsonRoute, read_json
from .context import Services
from .errors import ServiceError, operation_outcome
from .logs import event
from .middleware import BodyDeadline, HostCheck
from .routes import api, hooks, operations
from .settings import Settings
from .store import redact
from .telemetry import Observe

BODY_NAMES = {"call": "request", "feedback": "feedback"}  # how a route's body is named in its errors


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app (uvicorn calls this in each worker: `factory=True`)."""
    services = Services.build(settings or Settings.from_env())
    app = FastAPI(
        title="guidance-rules CDS Hooks service",
        version=__version__,
        description="Imaging guidance for musculoskeletal and spinal injections, over CDS Hooks and FHIR R4. Decision support only.",
        docs_url=None,  # served by routes.operations from the package's files: FastAPI's default loads them from a CDN
        redoc_url=None,
    )
    app.state.services = services
    app.router.route_class = JsonRoute  # the page's routes too
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(services.settings.cors_origins),
        allow_methods=["GET", "POST"],
        allow_headers=["Authorization", "Content-Type"],
    )
    app.add_middleware(BodyDeadline, seconds=services.settings.body_timeout)
    app.add_middleware(HostCheck, hosts=services.settings.hosts())
    app.add_middleware(Observe, telemetry=services.telemetry)
    _handle_errors(app, services)
    for router in (hooks.router, api.router, operations.router):
        app.include_router(router)
    page.register(app, services.recommender, services.settings.available, read_json)
    app.mount(operations.DOCS_ASSETS, StaticFiles(directory=operations.docs_assets()), name="docs-assets")
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    event(
        "started",
        db=redact(services.store.url),
        auth="off" if services.verifier is None else "jwt",
        ruleset=services.knowledge.digest,
        available=list(services.settings.available),
    )
    return app


def _handle_errors(app: FastAPI, services: Services) -> None:
    """Every error is an OperationOutcome with the status it names; never a stack trace."""

    @app.exception_handler(ServiceError)
    async def _service_error(_request: Request, error: ServiceError) -> JSONResponse:
        if error.status >= 500:
            services.telemetry.store_errors.inc()
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
    async def _validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0]
        loc = [str(p) for p in first["loc"]]
        if loc and loc[0] == "body":
            route = request.scope.get("route")
            loc[0] = BODY_NAMES.get(getattr(route, "name", ""), "body")
        where = ".".join(loc)
        return JSONResponse(operation_outcome(f"{where}: {first['msg']}", where=where), status_code=400)

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, error: Exception) -> JSONResponse:
        event("internal-error", logging.ERROR, error=f"{type(error).__name__}: {error}")
        return JSONResponse(operation_outcome("internal error; the request was not processed", "exception"), status_code=500)


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, made true: a validation error is answered 400 with an
    OperationOutcome (declared on each route), never FastAPI's 422; the Case body's schema is
    added to the components it is referred to from."""
    if app.openapi_schema is None:
        document = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        for model in api.SCHEMA_MODELS:
            schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(schema.pop("$defs", {}))
            schemas[model.__name__] = schema
        for path in document["paths"].values():
            for operation in path.values():
                operation.get("responses", {}).pop("422", None)
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        app.openapi_schema = document
    return app.openapi_schema
