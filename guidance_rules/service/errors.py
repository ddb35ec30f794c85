"""Errors the service answers with a 4xx/5xx OperationOutcome (never a stack trace)."""

from __future__ import annotations

from typing import Any

from guidance_rules.errors import GuidanceRulesError


class ServiceError(GuidanceRulesError):
    """An error with its HTTP status and FHIR issue code (invalid, structure, security, ...); part of
    the package's one hierarchy, so a caller catching GuidanceRulesError catches these too."""

    status = 400

    def __init__(self, message: str, *, code: str = "invalid", where: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.message, self.code, self.where, self.headers = message, code, where, headers or {}


class BadRequest(ServiceError):
    status = 400


class Unauthorized(ServiceError):
    status = 401

    def __init__(self, message: str):
        super().__init__(message, code="security", headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


class NotFound(ServiceError):
    status = 404

    def __init__(self, message: str, *, code: str = "not-found"):
        super().__init__(message, code=code)


class NoRecord(NotFound):
    """A database named for reading (the report) that holds no consultation record."""


class RequestTimeout(ServiceError):
    """The request's body did not arrive in time; the connection is closed after the answer."""

    status = 408

    def __init__(self, message: str):
        super().__init__(message, code="timeout", headers={"Connection": "close"})


class TooLarge(ServiceError):
    status = 413

    def __init__(self, message: str):
        super().__init__(message, code="too-costly")


class UnsupportedMedia(ServiceError):
    status = 415


class StoreUnavailable(ServiceError):
    """The consultation record could not be written: the request fails visibly."""

    status = 503

    def __init__(self, message: str):
        super().__init__(message, code="transient")


def operation_outcome(message: str, code: str = "invalid", severity: str = "error", where: str | None = None) -> dict[str, Any]:
    issue: dict[str, Any] = {"severity": severity, "code": code, "diagnostics": message}
    if where:
        issue["expression"] = [where]
    return {"resourceType": "OperationOutcome", "issue": [issue]}
