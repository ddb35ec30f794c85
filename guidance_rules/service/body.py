"""Every JSON body is checked before FastAPI reads it: content type (415), size (413, also when
no Content-Length is sent), JSON (400, also when nested too deeply) and text (a lone surrogate,
400). Then FastAPI validates it against the route's model."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from .errors import BadRequest, TooLarge, UnsupportedMedia

JSON_TYPES = ("application/json", "application/fhir+json")


async def read_json(request: Request) -> Any:
    """The checked body, read once (the result is kept on the request for FastAPI and the page)."""
    if hasattr(request, "_json"):
        return request._json
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype not in JSON_TYPES:
        raise UnsupportedMedia(f"content type '{ctype or 'none'}' is not accepted; send {' or '.join(JSON_TYPES)}", code="not-supported")
    limit = request.app.state.services.settings.max_body
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise BadRequest(f"Content-Length '{declared}' is not a number")
        if int(declared) > limit:
            raise TooLarge(f"the body is {declared} bytes; the limit is {limit}")
    size, chunks = 0, []
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"the body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    raw = b"".join(chunks)
    data = _parse(raw)
    request._body, request._json = raw, data  # Starlette's own caches: FastAPI then reads these
    return data


def _parse(raw: bytes) -> Any:
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


class JsonRoute(APIRoute):
    """A route whose POST body is checked by `read_json` before FastAPI parses it."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def checked(request: Request) -> Response:
            if request.method == "POST":
                await read_json(request)
            return await handler(request)

        return checked
