"""Operations: liveness, readiness, metrics, and the API documentation (served offline)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool

from guidance_rules._version import __version__

from ..context import Built
from ..errors import ServiceError
from ..models import Health, NotReady, Ready
from ..store import redact

router = APIRouter(tags=["operations"])
DOCS_ASSETS = "/docs/assets"


def docs_assets() -> Path:
    """Swagger UI's files as the fastapi-offline package ships them (the swagger-ui-dist release)."""
    import fastapi_offline

    return Path(fastapi_offline.__file__).parent / "static"


@router.get("/healthz", summary="Liveness", response_model=Health)
async def health() -> dict[str, Any]:
    return {"status": "ok", "version": __version__}


@router.get(
    "/readyz",
    summary="Readiness: a consultation record can be written now",
    response_model=Ready,
    responses={503: {"model": NotReady, "description": "a record cannot be written now (the reason is given)"}},
)
async def ready(built: Built) -> Any:
    try:
        await run_in_threadpool(built.store.ping)
    except ServiceError as error:
        return JSONResponse({"status": "unavailable", "database": error.message}, status_code=503)
    ruleset = {"version": built.knowledge.version, "digest": built.knowledge.digest}
    return {"status": "ready", "ruleset": ruleset, "database": redact(built.store.url).split("://")[0]}


@router.get(
    "/metrics",
    summary="Prometheus metrics (this worker)",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}, "description": "the metrics"}},
)
async def metrics(built: Built) -> Response:
    return Response(generate_latest(built.telemetry.registry), media_type=CONTENT_TYPE_LATEST)


@router.get("/docs", include_in_schema=False)
async def docs(request: Request) -> Response:
    """Swagger UI from the package's files, so it works on a closed clinic network; the online
    validator badge, which would send the document to another host, is off."""
    root = request.scope.get("root_path", "").rstrip("/")
    return get_swagger_ui_html(
        openapi_url=f"{root}/openapi.json",
        title=f"{request.app.title}: API",
        swagger_js_url=f"{root}{DOCS_ASSETS}/swagger-ui-bundle.js",
        swagger_css_url=f"{root}{DOCS_ASSETS}/swagger-ui.css",
        swagger_favicon_url=f"{root}{DOCS_ASSETS}/favicon.png",
        swagger_ui_parameters={"validatorUrl": None},
    )
