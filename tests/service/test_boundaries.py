"""What a caller cannot make the service do: put another host in card links, read records with
a hook service's token, hold a connection open (issue 20, points 8 to 10)."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

import pytest

from guidance_rules.service.settings import Settings

from .conftest import Server
from .fhir_examples import SCT, coding, hook_request, injection
from .test_auth_and_store import keys, token  # noqa: F401  (the fixture is used by name)

SELECT = "/cds-services/guidance-rules-order-select"


def order(srv: Server, **kw: Any) -> Any:
    return srv.post(SELECT, hook_request(injection([coding(SCT, "24136001")])), **kw)


def test_a_foreign_host_header_is_refused_and_never_in_a_link(server: Server) -> None:
    response = order(server, headers={"Host": "evil.example"})
    assert response.status_code == 400 and "evil.example" not in str(response.json().get("cards"))
    assert "is not a name this service answers to" in response.json()["issue"][0]["diagnostics"]
    (link,) = order(server, headers={"Host": f"localhost:{server.port}"}).json()["cards"][0]["links"]
    assert link["url"].startswith(f"http://localhost:{server.port}/page?")
    assert server.get("/readyz", headers={"Host": "10.0.0.7:8080"}).status_code == 200  # probes come by address


def test_links_use_a_configured_allowed_host(tmp_path: Path) -> None:
    srv = Server(f"sqlite:///{tmp_path}/c.sqlite3", "--insecure-no-auth", "--allowed-host", "cds.internal")
    try:
        (link,) = order(srv, headers={"Host": "cds.internal"}).json()["cards"][0]["links"]
        assert link["url"].startswith("http://cds.internal/page?")
        assert order(srv, headers={"Host": "localhost"}).status_code == 400  # the configured list replaces the default
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def records_server(keys: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Any:  # noqa: F811
    folder = keys["folder"]
    config = folder / "trust-records.yaml"
    config.write_text(keys["config"].read_text() + 'consultations_audience: ["http://127.0.0.1/api/v1/consultations"]\n', encoding="utf-8")
    srv = Server(f"sqlite:///{tmp_path_factory.mktemp('records')}/c.sqlite3", "--auth-config", str(config))
    yield srv
    srv.stop()


def test_the_consultation_api_has_its_own_audience(records_server: Server, keys: dict[str, Any]) -> None:  # noqa: F811
    card = order(records_server, headers={"Authorization": f"Bearer {token(keys)}"}).json()["cards"][0]
    path = f"/api/v1/consultations/{card['uuid']}"
    for hook_audience in ("http://127.0.0.1/cds-services/guidance-rules-order-select", "http://127.0.0.1/cds-services"):
        response = records_server.get(path, headers={"Authorization": f"Bearer {token(keys, aud=hook_audience)}"})
        assert response.status_code == 401, response.text
    reader = token(keys, aud="http://127.0.0.1/api/v1/consultations")
    assert records_server.get(path, headers={"Authorization": f"Bearer {reader}"}).json()["id"] == card["uuid"]
    records_token = token(keys, aud="http://127.0.0.1/api/v1/consultations")
    assert order(records_server, headers={"Authorization": f"Bearer {records_token}"}).status_code == 401  # and not the reverse


def test_without_a_consultations_audience_no_token_reads_records(tmp_path: Path, keys: dict[str, Any]) -> None:  # noqa: F811
    srv = Server(f"sqlite:///{tmp_path}/c.sqlite3", "--auth-config", str(keys["config"]))
    try:
        card = order(srv, headers={"Authorization": f"Bearer {token(keys)}"}).json()["cards"][0]
        response = srv.get(f"/api/v1/consultations/{card['uuid']}", headers={"Authorization": f"Bearer {token(keys)}"})
        assert response.status_code == 401 and "consultations_audience" in response.text
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def impatient(tmp_path_factory: pytest.TempPathFactory) -> Any:
    db = tmp_path_factory.mktemp("timeouts") / "c.sqlite3"
    srv = Server(f"sqlite:///{db}", "--insecure-no-auth", "--header-timeout", "1", "--body-timeout", "1")
    yield srv
    srv.stop()


def closed_within(sock: socket.socket, seconds: float) -> bytes:
    """What the server sent before it closed the connection; fails if it is still open after `seconds`."""
    sock.settimeout(seconds)
    received = b""
    try:
        while chunk := sock.recv(4096):
            received += chunk
    except TimeoutError:
        pytest.fail(f"the connection was still open after {seconds} s; received {received!r}")
    return received


def test_an_unfinished_request_head_is_cut_off(impatient: Server) -> None:
    for start in (b"", b"POST /cds-services/guidance-rules-order-select HTTP/1.1\r\nHost: 127.0.0.1\r\n"):
        with socket.create_connection(("127.0.0.1", impatient.port)) as sock:
            sock.sendall(start)
            began = time.monotonic()
            closed_within(sock, 5)
            assert time.monotonic() - began >= 0.8


def test_an_unfinished_body_gets_408(impatient: Server) -> None:
    head = (
        b"POST /cds-services/guidance-rules-order-select HTTP/1.1\r\n"
        b"Host: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", impatient.port)) as sock:
        sock.sendall(head + b'{"hook": ')
        answer = closed_within(sock, 5)
    assert answer.startswith(b"HTTP/1.1 408") and b"did not arrive within 1 s" in answer


def test_a_kept_alive_connection_still_serves(impatient: Server) -> None:
    """The deadlines do not cut a client that is on time (several requests on one connection)."""
    import httpx

    with httpx.Client(base_url=impatient.url) as client:
        for _ in range(3):
            assert client.post(SELECT, json=hook_request(injection([coding(SCT, "24136001")]))).status_code == 200


@pytest.mark.parametrize("value", ["0", "-1", "ten", "nan", "1e9"])
def test_a_bad_timeout_is_named(value: str) -> None:
    with pytest.raises(ValueError, match=r"HEADER_TIMEOUT: .* is not a time in seconds"):
        Settings.from_env({"GUIDANCE_RULES_HEADER_TIMEOUT": value})
