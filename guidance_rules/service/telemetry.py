"""Prometheus metrics and one structured log line per request (pure ASGI: no body copies)."""

from __future__ import annotations

import time
import uuid

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .logs import event


class Telemetry:
    """This worker's metrics."""

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
