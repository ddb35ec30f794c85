"""The clinicians' page: a form built from the case's JSON Schema, the answer with its reasons.

The page is static (HTML, CSS and JavaScript in `static/`, written here, no external assets) and
talks to four small JSON endpoints registered here: the case schema with the site catalogue's
keys, the sites with their defaults, the sources a citation can name, and the answer with the
assumed inputs that would change it (`whatif.inputs_that_matter`).

These routes need no token: the page runs in a browser that holds none, they read nothing about a
patient and write no record (the consultation record belongs to the CDS Hooks calls). A case is
carried in the page's URL as query parameters (`case_query`), so a CDS card can link to it.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from guidance_rules.model import Case
from guidance_rules.recommendation.problems import problems_of
from guidance_rules.recommendation.recommender import Recommender
from guidance_rules.recommendation.whatif import inputs_that_matter

from .errors import BadRequest

STATIC = Path(__file__).resolve().parent / "static"
PAGE_PATH = "/page"
# A page that only loads its own files; the answers come from this origin.
CSP = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
    )
)


def case_schema(recommender: Recommender) -> dict[str, Any]:
    """The JSON Schema of a case, with `site` limited to the catalogue's keys (or null)."""
    schema = Case.model_json_schema()
    schema["properties"]["site"] = {
        "anyOf": [{"enum": list(recommender.knowledge.sites)}, {"type": "null"}],
        "default": None,
        "description": schema["properties"]["site"].get("description", ""),
    }
    return schema


def case_query(case: Case | Mapping[str, Any]) -> str:
    """The case as the page's query string: one parameter per given field; true/false for flags,
    comma-separated items for lists (an empty value is an empty list). Fields left out are not
    known. The page's script reads the same format back (`readQuery` in page.js)."""
    data = case.model_dump(mode="json", exclude_none=True) if isinstance(case, Case) else {k: v for k, v in case.items() if v is not None}
    params = []
    for name, value in data.items():
        if isinstance(value, bool):
            params.append((name, "true" if value else "false"))
        elif isinstance(value, (list, tuple)):
            params.append((name, ",".join(str(v) for v in value)))
        else:
            params.append((name, str(value)))
    return urlencode(params)


def page_url(base_url: str, case: Case | Mapping[str, Any]) -> str:
    """The absolute address of the page showing this case (for a card's link)."""
    return f"{base_url.rstrip('/')}{PAGE_PATH}?{case_query(case)}"


def sites(recommender: Recommender, available: tuple[str, ...]) -> dict[str, Any]:
    """What the form shows before any answer: each site's title, reason and defaults, the
    tissue and field defaults that fill what a site does not, and this clinic's equipment."""
    knowledge = recommender.knowledge
    return {
        "identity_fields": list(knowledge.identity_fields),
        "sites": {key: {"title": s.title, "why": s.why, "defaults": dict(s.defaults)} for key, s in knowledge.sites.items()},
        "tissue_defaults": {tissue: dict(values) for tissue, values in knowledge.tissue_defaults.items()},
        "field_defaults": dict(knowledge.field_defaults),
        "clinic_equipment": list(available),
        "ruleset": {"version": knowledge.version, "digest": knowledge.digest},
    }


def sources(recommender: Recommender) -> dict[str, Any]:
    """Every source a citation may name, with the article's propositions by id."""
    return {
        key: {
            "title": spec.title,
            "kind": spec.kind,
            "propositions": {pid: {"section": p.section, "summary": p.summary} for pid, p in spec.propositions.items()},
        }
        for key, spec in recommender.knowledge.sources.items()
    }


def invalid_body(error: ValidationError, recommender: Recommender) -> dict[str, Any]:
    """The 400 body of `POST /api/v1/recommendations`: one issue per problem, its field as the
    expression (several fields, comma-separated, for a contradiction)."""
    issues = [
        {"severity": "error", "code": "invalid", "diagnostics": m, "expression": [f]} for f, m in problems_of(error, recommender.knowledge)
    ]
    return {"resourceType": "OperationOutcome", "issue": issues}


def explained(recommender: Recommender, raw: dict[str, Any]) -> str:
    """The recommendation and the assumed inputs that would change it, as one JSON text."""
    rec = json.loads(recommender.recommend_json(raw))
    assumed = [a.model_dump(mode="json") for a in inputs_that_matter(raw, recommender)]
    return json.dumps({"recommendation": rec, "inputs_that_matter": assumed}, separators=(",", ":"))


def register(app: FastAPI, recommender: Recommender, available: tuple[str, ...], read_body: Callable[[Request], Awaitable[Any]]) -> None:
    """Add the page, its files and its endpoints to the service (`read_body`: the app's JSON
    reader, so size and content-type limits are the same as everywhere else)."""
    schema_text = json.dumps(case_schema(recommender))
    sites_text = json.dumps(sites(recommender, available))
    sources_text = json.dumps(sources(recommender))
    headers = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}

    app.mount(f"{PAGE_PATH}/static", StaticFiles(directory=STATIC), name="page-static")

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse(PAGE_PATH, status_code=307)

    @app.get(PAGE_PATH, tags=["page"], summary="The clinicians' page (HTML); the case may be given as query parameters")
    async def page() -> FileResponse:
        return FileResponse(STATIC / "page.html", media_type="text/html; charset=utf-8", headers=headers)

    @app.get("/api/v1/case-schema", tags=["page"], summary="The JSON Schema of a case, with the catalogue's sites")
    async def schema() -> Response:
        return Response(schema_text, media_type="application/json")

    @app.get("/api/v1/sites", tags=["page"], summary="The site catalogue with each site's defaults, and the tissue and field defaults")
    async def site_catalogue() -> Response:
        return Response(sites_text, media_type="application/json")

    @app.get("/api/v1/sources", tags=["page"], summary="The sources a citation may name")
    async def source_list() -> Response:
        return Response(sources_text, media_type="application/json")

    @app.post(
        "/api/v1/recommendations/explained",
        tags=["page"],
        summary="A Case in; the Recommendation and the assumed inputs that would change it out (no record is written)",
    )
    async def answer(request: Request) -> Response:
        raw = await read_body(request)
        if not isinstance(raw, dict):
            raise BadRequest("the body must be a JSON object: a Case")
        try:
            text = await run_in_threadpool(explained, recommender, raw)
        except ValidationError as error:
            return JSONResponse(invalid_body(error, recommender), status_code=400)
        return Response(text, media_type="application/json")
