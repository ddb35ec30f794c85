"""/openapi.json is the truth about the service (issue 20, point 11): every body, response and
error is declared, and a schemathesis run against it finds no server error and no answer that
its schema does not describe. In-process (ASGI): no server, no token (auth is tested elsewhere)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is in the dev extra")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from guidance_rules.service.app import create_app  # noqa: E402
from guidance_rules.service.settings import Settings  # noqa: E402

MAX_EXAMPLES = 30
PAGE_TAG = "page"  # the clinicians' page's routes are declared by service/page.py (HTML and raw JSON)


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    db = tmp_path_factory.mktemp("openapi") / "c.sqlite3"
    yield create_app(Settings(db_url=f"sqlite:///{db}", insecure_no_auth=True, allowed_hosts=("testserver",)))


@pytest.fixture(scope="module")
def api_schema(app: Any) -> Any:
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def test_every_operation_declares_its_body_responses_and_errors(app: Any) -> None:
    document = app.openapi()
    outcome = {"$ref": "#/components/schemas/OperationOutcome"}
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if PAGE_TAG in operation.get("tags", []):
                continue
            responses = operation["responses"]
            assert "422" not in responses, f"{method} {path} declares FastAPI's 422, which is never answered"
            ok = next(iter(responses["200"]["content"].values()))["schema"]
            assert ok, f"{method} {path} declares no schema for its answer"
            if method == "post":
                body = operation["requestBody"]["content"]["application/json"]["schema"]
                assert body.get("$ref"), f"{method} {path} declares no body"
                for status in ("400", "413", "415"):
                    assert responses[status]["content"]["application/json"]["schema"] == outcome, f"{method} {path} {status}"


def operations(api_schema: Any, page: bool) -> list[Any]:
    found = [result.ok() for result in api_schema.get_all_operations()]
    return [op for op in found if (PAGE_TAG in (op.tags or [])) == page]


def fuzz(operation: Any, checks: list[Any]) -> str | None:
    """Run schemathesis's generated cases against one operation; the first failure, or None.
    (Driven here rather than by its pytest plugin, which does not run on pytest 9.)"""

    @given(case=operation.as_strategy())
    @settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck), database=None)
    def run(case: Any) -> None:
        case.call_and_validate(checks=checks)

    try:
        run()
    except Exception as failure:  # schemathesis's failure groups name the check and the case
        return f"{operation.method.upper()} {operation.path}: {failure}"
    return None


def test_the_service_answers_as_its_schema_says(api_schema: Any) -> None:
    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
    failures = [f for op in operations(api_schema, page=False) if (f := fuzz(op, checks))]
    assert not failures, "\n\n".join(failures)


def test_the_page_routes_never_fail_with_a_server_error(api_schema: Any) -> None:
    failures = [f for op in operations(api_schema, page=True) if (f := fuzz(op, [not_a_server_error]))]
    assert not failures, "\n\n".join(failures)
