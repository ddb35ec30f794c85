"""The plain JSON API: a recommendation for a Case, and the consultation record."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from guidance_rules.model import Case, Recommendation
from guidance_rules.recommendation.problems import problems_of

from ..body import JsonRoute, read_json
from ..context import Built, api_caller, record_reader
from ..errors import BadRequest
from ..models import ConsultationRecord, errors

router = APIRouter(tags=["JSON API"], route_class=JsonRoute)

CASE_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Case"}}},
    }
}


@router.post(
    "/api/v1/recommendations",
    summary="A Case in, the contract's Recommendation JSON out",
    response_model=None,
    responses={200: {"model": Recommendation}, **errors(400, 401, 408, 413, 415)},
    openapi_extra=CASE_BODY,
    dependencies=[Depends(api_caller)],
)
async def recommend(request: Request, built: Built) -> Response:
    raw = await read_json(request)  # the Case is validated by the recommender: its problems name the field
    if not isinstance(raw, dict):
        raise BadRequest("the body must be a JSON object: a Case")
    try:
        text = await run_in_threadpool(built.recommender.recommend_json, raw)
    except ValidationError as error:
        issues = [
            {"severity": "error", "code": "invalid", "diagnostics": m, "expression": [f]} for f, m in problems_of(error, built.knowledge)
        ]
        return JSONResponse({"resourceType": "OperationOutcome", "issue": issues}, status_code=400)
    return Response(text, media_type="application/json")


@router.get(
    "/api/v1/consultations/{consultation_id}",
    summary="One consultation record with its feedback (its own token audience: consultations_audience)",
    response_model=ConsultationRecord,
    responses=errors(400, 401, 404, 503),
    dependencies=[Depends(record_reader)],
)
async def consultation(consultation_id: str, built: Built) -> dict[str, Any]:
    return await run_in_threadpool(built.store.consultation, consultation_id)


SCHEMA_MODELS = (Case,)  # models the document names by reference only (the Case body): added to its components
