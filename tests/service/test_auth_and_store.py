"""JWT verification, the record across restarts, PostgreSQL, the report, and failed writes."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from guidance_rules.service.settings import Settings

from .conftest import Server
from .fhir_examples import SCT, coding, hook_request, injection

SELECT = "/cds-services/guidance-rules-order-select"
ISS = "https://ehr.example.org"


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("trust")
    key = ec.generate_private_key(ec.SECP384R1())
    public = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    public.update(kid="ehr-1", use="sig", alg="ES384")
    (folder / "jwks.json").write_text(json.dumps({"keys": [public]}))
    (folder / "trust.yaml").write_text(f'audience: ["http://127.0.0.1/cds-services"]\nissuers:\n  "{ISS}": {{jwks_file: jwks.json}}\n')
    return {"key": key, "config": folder / "trust.yaml", "folder": folder}


@pytest.fixture(scope="module")
def secured(keys: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Any:
    db = tmp_path_factory.mktemp("authdb") / "c.sqlite3"
    srv = Server(f"sqlite:///{db}", "--auth-config", str(keys["config"]))
    yield srv
    srv.stop()


def token(keys: dict[str, Any], **override: Any) -> str:
    now = int(time.time())
    claims = {
        "iss": ISS,
        "sub": "client",
        "aud": "http://127.0.0.1/cds-services/guidance-rules-order-select",
        "iat": now,
        "exp": now + 300,
        "jti": str(uuid.uuid4()),
    }
    claims.update(override)
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, keys["key"], algorithm="ES384", headers={"kid": "ehr-1"})


def call(srv: Server, bearer: str | None) -> Any:
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    return srv.post(SELECT, hook_request(injection([coding(SCT, "49076000")])), headers=headers)


def assert_401(response: Any, fragment: str) -> None:
    assert response.status_code == 401, response.text
    body = response.json()
    assert body["resourceType"] == "OperationOutcome" and body["issue"][0]["code"] == "security"
    assert fragment in body["issue"][0]["diagnostics"]


def test_valid_token_is_accepted_once(secured: Server, keys: dict[str, Any]) -> None:
    signed = token(keys)
    assert call(secured, signed).status_code == 200
    assert_401(call(secured, signed), "already used")


def test_rejected_tokens(secured: Server, keys: dict[str, Any]) -> None:
    assert_401(call(secured, None), "Authorization")
    assert_401(call(secured, token(keys, aud="https://elsewhere.example/cds-services")), "rejected")
    assert_401(call(secured, token(keys, exp=int(time.time()) - 3600, iat=int(time.time()) - 4000)), "rejected")
    assert_401(call(secured, token(keys, iss="https://rogue.example")), "not trusted")
    assert_401(call(secured, token(keys, jti=None)), "rejected")
    other = ec.generate_private_key(ec.SECP384R1())
    forged = jwt.encode(
        {"iss": ISS, "aud": "http://127.0.0.1/cds-services", "iat": int(time.time()), "exp": int(time.time()) + 60, "jti": "f1"},
        other,
        algorithm="ES384",
        headers={"kid": "ehr-1"},
    )
    assert_401(call(secured, forged), "rejected")
    symmetric = jwt.encode(
        {"iss": ISS, "aud": "http://127.0.0.1/cds-services", "exp": int(time.time()) + 60, "jti": "s1"},
        "secret-secret-secret-secret-secret!",
        algorithm="HS256",
    )
    assert_401(call(secured, symmetric), "asymmetric")
    assert_401(call(secured, "not-a-jwt"), "not a JWT")


def call_with(srv: Server, authorization: str) -> Any:
    return srv.post(SELECT, hook_request(injection([coding(SCT, "49076000")])), headers={"Authorization": authorization})


def test_the_bearer_scheme_is_case_insensitive(secured: Server, keys: dict[str, Any]) -> None:
    assert call_with(secured, f"bearer {token(keys)}").status_code == 200
    assert call_with(secured, f"BEARER {token(keys)}").status_code == 200
    assert_401(call_with(secured, f"Basic {token(keys)}"), "Authorization")
    assert_401(call_with(secured, "Bearer"), "Authorization")


def test_a_token_for_another_service_is_refused(secured: Server, keys: dict[str, Any]) -> None:
    """CDS Hooks: `aud` is the endpoint called; a token minted for order-sign is not one for order-select."""
    assert_401(call(secured, token(keys, aud="http://127.0.0.1/cds-services/guidance-rules-order-sign")), "rejected")
    assert call(secured, token(keys, aud="http://127.0.0.1/cds-services")).status_code == 200  # the configured base URL


def test_claims_the_specification_requires(secured: Server, keys: dict[str, Any]) -> None:
    assert call(secured, token(keys, sub=None)).status_code == 200  # CDS Hooks 2.0 does not require `sub`
    assert_401(call(secured, token(keys, iat=None)), "iat")
    assert_401(call(secured, token(keys, jti="j" * 5000)), "jti")
    assert_401(call(secured, token(keys, jti=12345)), "JWT ID")


@pytest.mark.parametrize("exp", [10**12, 10**18, 10**30])
def test_a_far_expiry_is_refused_not_a_server_error(secured: Server, keys: dict[str, Any], exp: int) -> None:
    assert_401(call(secured, token(keys, exp=exp)), "CDS Hooks tokens live minutes")


def test_discovery_and_health_need_no_token(secured: Server) -> None:
    assert secured.get("/cds-services").status_code == 200
    assert secured.get("/healthz").status_code == 200


def test_serve_refuses_to_start_without_trust_or_switch(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "guidance_rules", "serve", "--db", f"sqlite:///{tmp_path}/x.db"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "--auth-config" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("option", "fragment"),
    [
        (["--public-url", "cds.example.org"], "PUBLIC_URL: 'cds.example.org' is not the service's base address"),
        (["--public-url", "https://cds.example.org/?x=1"], "absolute http(s) URL with no query"),
    ],
)
def test_serve_refuses_a_bad_public_url(tmp_path: Path, option: list[str], fragment: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "guidance_rules", "serve", "--insecure-no-auth", "--db", f"sqlite:///{tmp_path}/x.db", *option],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert fragment in result.stderr and "Traceback" not in result.stderr


def test_bad_body_limit_is_named() -> None:
    with pytest.raises(ValueError, match=r"MAX_BODY: '1MB' is not a size in bytes"):
        Settings.from_env({"GUIDANCE_RULES_MAX_BODY": "1MB"})


def test_card_links_use_the_public_url_behind_a_proxy(tmp_path: Path) -> None:
    srv = Server(f"sqlite:///{tmp_path}/c.sqlite3", "--insecure-no-auth", "--public-url", "https://cds.example.org/guidance/")
    try:
        card = srv.post(SELECT, hook_request(injection([coding(SCT, "24136001")]))).json()["cards"][0]
        (link,) = card["links"]
        assert link["url"].startswith("https://cds.example.org/guidance/page?")
    finally:
        srv.stop()


def consult_and_feedback(srv: Server, outcome: str, body_site: str = "24136001") -> str:
    card = srv.post(SELECT, hook_request(injection([coding(SCT, body_site)]))).json()["cards"][0]
    item: dict[str, Any] = {"card": card["uuid"], "outcome": outcome, "outcomeTimestamp": "2025-06-01T12:00:00Z"}
    if outcome == "overridden":
        item["overrideReason"] = {"reason": card["overrideReasons"][0]}
    assert srv.post(SELECT + "/feedback", {"feedback": [item]}).status_code == 200
    return str(card["uuid"])


def report(db_url: str) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-m", "guidance_rules", "consultations", "report", "--db", db_url, "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def check_restart_and_report(db_url: str, *args: str) -> None:
    first = Server(db_url, "--insecure-no-auth", *args)
    try:
        overridden = consult_and_feedback(first, "overridden")
        consult_and_feedback(first, "accepted")
        consult_and_feedback(first, "accepted", "49076000")
    finally:
        first.stop()
    second = Server(db_url, "--insecure-no-auth", *args)
    try:
        record = second.get(f"/api/v1/consultations/{overridden}").json()
        assert record["site"] == "hip" and record["feedback"][0]["outcome"] == "overridden"
    finally:
        second.stop()
    summary = report(db_url)
    assert summary["by_site"]["hip"] == {"consultations": 2, "with_feedback": 2, "accepted": 1, "overridden": 1, "override_rate": 0.5}
    assert summary["by_site"]["knee"]["override_rate"] == 0.0
    assert summary["override_reasons"] == {"clinical-judgement": 1}


def test_sqlite_record_survives_a_restart_and_reports(tmp_path: Path) -> None:
    check_restart_and_report(f"sqlite:///{tmp_path}/c.sqlite3", "--available", "fluoroscopy")


def test_clinic_lacking_the_modality_gets_a_warning(tmp_path: Path) -> None:
    srv = Server(f"sqlite:///{tmp_path}/c.sqlite3", "--insecure-no-auth", "--available", "fluoroscopy")
    try:
        from guidance_rules import recommend

        expected = recommend({"site": "hip", "injectate": "corticosteroid", "available_modalities": ["fluoroscopy"]})
        card = srv.post(SELECT, hook_request(injection([coding(SCT, "24136001")], cpt="20611"))).json()["cards"][0]
        assert expected.modality.value == "ultrasound"  # the case this test is about: ordered as recommended, not available
        assert card["indicator"] == "warning" and "not available here" in card["summary"]
        assert any(c.text in card["detail"] for c in expected.cautions)
    finally:
        srv.stop()


def test_a_failed_write_fails_the_request(tmp_path: Path) -> None:
    db = tmp_path / "c.sqlite3"
    srv = Server(f"sqlite:///{db}", "--insecure-no-auth")
    try:
        with sqlite3.connect(db) as conn:
            conn.execute("DROP TABLE feedback")
            conn.execute("DROP TABLE consultations")
        response = srv.post(SELECT, hook_request(injection([coding(SCT, "24136001")])))
        assert response.status_code == 503
        body = response.json()
        assert body["resourceType"] == "OperationOutcome" and "no card was returned" in body["issue"][0]["diagnostics"]
        assert "cards" not in body
        assert srv.get("/readyz").status_code == 200  # reachable; the failure was the write, reported as such
    finally:
        srv.stop()


def test_patient_id_is_kept_only_as_a_keyed_hash(tmp_path: Path) -> None:
    srv = Server(f"sqlite:///{tmp_path}/c.sqlite3", "--insecure-no-auth", env={"GUIDANCE_RULES_PATIENT_KEY": "k1"})
    try:
        card = srv.post(SELECT, hook_request(injection([coding(SCT, "24136001")]))).json()["cards"][0]
        record = srv.get(f"/api/v1/consultations/{card['uuid']}").json()
        assert record["patient_hash"] and len(record["patient_hash"]) == 64
        assert "1288992" not in json.dumps(record)
    finally:
        srv.stop()


def test_postgresql_record_survives_a_restart_and_reports(postgres_url: str) -> None:
    check_restart_and_report(postgres_url)


def run_report(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "guidance_rules", "consultations", "report", *args], capture_output=True, text=True, timeout=120
    )


def test_report_period_with_a_utc_offset(tmp_path: Path) -> None:
    """--since with an offset is that instant; the record keeps UTC (the offset was dropped)."""
    import datetime as dt

    db_url = f"sqlite:///{tmp_path}/c.sqlite3"
    srv = Server(db_url, "--insecure-no-auth")
    try:
        assert srv.post(SELECT, hook_request(injection([coding(SCT, "24136001")]))).status_code == 200
    finally:
        srv.stop()
    plus_one = dt.timezone(dt.timedelta(hours=1))
    before = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)).astimezone(plus_one).isoformat()
    after = (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10)).astimezone(dt.timezone(dt.timedelta(hours=-5))).isoformat()
    counts = []
    for since in (before, after):
        result = run_report("--db", db_url, "--json", "--since", since)
        assert result.returncode == 0, result.stderr
        counts.append(json.loads(result.stdout)["total"]["consultations"])
    assert counts == [1, 0]


def test_report_on_a_database_that_holds_no_record(tmp_path: Path) -> None:
    """A mistyped path is named (exit 2), not created and reported as zeros."""
    missing = tmp_path / "typo.sqlite3"
    result = run_report("--db", f"sqlite:///{missing}")
    assert result.returncode == 2 and "no consultation database" in result.stderr and "Traceback" not in result.stderr
    assert not missing.exists()
    other = tmp_path / "other.sqlite3"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.commit()
    result = run_report("--db", f"sqlite:///{other}")
    assert result.returncode == 2 and "holds no consultation record" in result.stderr


def test_not_ready_while_another_process_holds_the_write_lock(tmp_path: Path) -> None:
    """Every hook call would wait 10 s and fail; readiness says so at once (review finding)."""
    db = tmp_path / "c.sqlite3"
    srv = Server(f"sqlite:///{db}", "--insecure-no-auth")
    try:
        assert srv.get("/readyz").status_code == 200
        holder = sqlite3.connect(db, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        try:
            response = srv.get("/readyz")
            assert response.status_code == 503 and "not writable now" in response.json()["database"]
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert srv.get("/readyz").status_code == 200
    finally:
        srv.stop()
