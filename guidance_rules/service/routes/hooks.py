"""CDS Hooks: discovery, the two order hooks, feedback."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from ..body import JsonRoute
from ..consult import consult, record_feedback
from ..context import SERVICES, Built, hook_caller
from ..models import Cards, Discovery, FeedbackRequest, FeedbackResult, HookRequest, errors

router = APIRouter(tags=["CDS Hooks"], route_class=JsonRoute)
Caller = Annotated[dict[str, Any] | None, Depends(hook_caller)]
BODY_ERRORS = errors(400, 401, 404, 408, 413, 415, 503)


@router.get("/cds-services", summary="Discovery", response_model=Discovery, responses=errors(400))
async def discovery(built: Built) -> dict[str, Any]:
    prefetch = built.mapping.prefetch()
    return {"services": [{"id": sid, **spec, "prefetch": prefetch} for sid, spec in SERVICES.items()]}


@router.post(
    "/cds-services/{service_id}",
    summary="Hook call (order-select or order-sign)",
    response_model=None,
    responses={200: {"model": Cards, "description": "one card per (selected) injection order"}, **BODY_ERRORS},
)
async def call(service_id: str, hook_request: HookRequest, request: Request, built: Built, _caller: Caller) -> JSONResponse:
    # Behind a reverse proxy request.base_url is the proxy's upstream address: links use the public
    # one. Without it, the Host header (checked against the allowed hosts by HostCheck).
    base_url = built.settings.public_url or str(request.base_url)
    # the cards as JSON directly: FastAPI's encoder would walk every card's members in Python first
    return JSONResponse(await run_in_threadpool(consult, built, service_id, hook_request, base_url))


@router.post(
    "/cds-services/{service_id}/feedback",
    summary="Feedback: accepted or overridden",
    response_model=FeedbackResult,
    responses=BODY_ERRORS,
)
async def feedback(service_id: str, body: FeedbackRequest, built: Built, _caller: Caller) -> dict[str, Any]:
    return await run_in_threadpool(record_feedback, built, service_id, body)
