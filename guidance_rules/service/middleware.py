"""Pure ASGI middleware (no body copies): the Host check and the body's deadline."""

from __future__ import annotations

import asyncio
import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import RequestTimeout, operation_outcome

# Probes reach a pod by its address; these answers carry no links, so any Host may ask for them
UNCHECKED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


def host_name(value: str) -> str:
    """The name in a Host header, without its port: 'Example.org:8080' -> 'example.org', '[::1]:80' -> '::1'."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class HostCheck:
    """Card links are built from the Host header when no public URL is set, so a request naming
    another host (`Host: evil.example`) would hand the EHR links to it: such requests get 400."""

    def __init__(self, app: ASGIApp, hosts: frozenset[str]):
        self.app, self.hosts = app, hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] not in UNCHECKED_PATHS:
            given = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"host"), None)
            if given is not None and host_name(given) not in self.hosts:
                message = (
                    f"Host '{given}' is not a name this service answers to; allowed: {', '.join(sorted(self.hosts))} "
                    "(configure --public-url or --allowed-host)"
                )
                body = json.dumps(operation_outcome(message, "security", where="Host")).encode()
                headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
                await send({"type": "http.response.start", "status": 400, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


class BodyDeadline:
    """A request's body must arrive within `seconds` of its head, else 408 (RequestTimeout):
    an unfinished body would otherwise hold a worker's connection for ever."""

    def __init__(self, app: ASGIApp, seconds: float):
        self.app, self.seconds = app, seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.seconds
        complete = False

        async def timed_receive() -> Message:
            nonlocal complete
            if complete:  # after the body only the disconnect is awaited: no deadline for that
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), max(deadline - loop.time(), 0))
            except TimeoutError:
                raise RequestTimeout(f"the request's body did not arrive within {self.seconds:g} s of its head") from None
            complete = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        await self.app(scope, timed_receive, send)
