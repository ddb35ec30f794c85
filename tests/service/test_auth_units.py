"""The trust configuration and the JWT verifier in-process (issue 24: the verifier was tested only
through a running server, which no planted bug reaches): each refusal names its reason, each
accepted token is remembered once, with a Store in tmp_path."""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("jwt", reason="the service extra is not installed (pip install -e '.[service]')")

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from sqlalchemy import select

from guidance_rules.service.auth import ALGORITHMS, AuthConfig, AuthConfigError, Issuer, Verifier
from guidance_rules.service.errors import Unauthorized
from guidance_rules.service.store import Store, tokens

ISS = "https://ehr.example.org"
FETCHED = "https://sandbox.example"
AUDIENCE = "https://cds.example.org/cds-services"
RECORDS = "https://cds.example.org/api/v1/consultations"
CURVES = {"ES256": ec.SECP256R1(), "ES384": ec.SECP384R1(), "ES512": ec.SECP521R1()}
KEYS: dict[str, Any] = {}


def key_for(alg: str, kid: str = "k1") -> Any:
    """One private key per algorithm family and kid, made once per test session."""
    family = alg if alg.startswith("ES") else "RSA"
    if (family, kid) not in KEYS:
        KEYS[family, kid] = ec.generate_private_key(CURVES[alg]) if family in CURVES else rsa.generate_private_key(65537, 2048)
    return KEYS[family, kid]


def jwk(alg: str, kid: str) -> dict[str, Any]:
    algorithm = jwt.algorithms.ECAlgorithm if alg.startswith("ES") else jwt.algorithms.RSAAlgorithm
    public: dict[str, Any] = json.loads(algorithm.to_jwk(key_for(alg, kid).public_key()))
    public.update(kid=kid, use="sig", alg=alg)
    return public


def write_trust(folder: Path, keys: list[tuple[str, str]], **more: Any) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "jwks.json").write_text(json.dumps({"keys": [jwk(alg, kid) for alg, kid in keys]}, ensure_ascii=False), encoding="utf-8")
    config = {"audience": [AUDIENCE], "issuers": {ISS: {"jwks_file": "jwks.json"}, FETCHED: {"jwks_url": FETCHED + "/jwks"}}, **more}
    (folder / "trust.yaml").write_text(json.dumps(config, ensure_ascii=False), encoding="utf-8")
    return folder / "trust.yaml"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store(f"sqlite:///{tmp_path}/record.sqlite3")
    yield opened
    opened.close()


@pytest.fixture
def verifier(tmp_path: Path, store: Store) -> Verifier:
    config = write_trust(tmp_path / "trust", [("ES384", "k1"), ("ES384", "k2")], consultations_audience=RECORDS)
    return Verifier(AuthConfig.load(config), store)


def token(alg: str = "ES384", kid: str | None = "k1", signer: Any = None, **override: Any) -> str:
    now = int(time.time())
    claims = {"iss": ISS, "aud": AUDIENCE, "iat": now, "exp": now + 300, "jti": str(uuid.uuid4())}
    claims.update(override)
    claims = {k: v for k, v in claims.items() if v is not None}
    headers = {"kid": kid} if kid else {}
    return jwt.encode(claims, signer or key_for(alg, kid or "k1"), algorithm=alg, headers=headers)


def refused(verifier: Verifier, authorization: str | None, audiences: list[str] | None = None) -> str:
    with pytest.raises(Unauthorized) as error:
        verifier.verify(authorization, audiences)
    assert error.value.status == 401 and error.value.code == "security"
    return error.value.message


# --- the trust configuration --------------------------------------------------------------------


def test_a_configuration_is_read_with_keys_beside_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = write_trust(tmp_path / "etc", [("ES384", "k1")], audience=AUDIENCE, consultations_audience=RECORDS)
    monkeypatch.chdir(tmp_path)  # jwks_file is relative to the configuration, not to where the service starts
    loaded = AuthConfig.load(str(config.relative_to(tmp_path)))
    assert (loaded.audience, loaded.consultations_audience) == ((AUDIENCE,), (RECORDS,))
    assert loaded.issuers[FETCHED] == Issuer(FETCHED, FETCHED + "/jwks", None)
    local = loaded.issuers[ISS]
    assert (local.name, local.jwks_url) == (ISS, None)
    assert local.jwks is not None and [k.key_id for k in local.jwks.keys] == ["k1"]
    several = write_trust(tmp_path / "several", [("ES384", "k1")], audience=[AUDIENCE, "https://b"], consultations_audience=[RECORDS, "c"])
    assert AuthConfig.load(several).audience == (AUDIENCE, "https://b")
    assert AuthConfig.load(several).consultations_audience == (RECORDS, "c")
    assert AuthConfig.load(write_trust(tmp_path / "none", [("ES384", "k1")])).consultations_audience == ()


ISSUERS = "'issuers' must map each trusted iss to {jwks_url: ...} or {jwks_file: ...}"
AUDIENCES = "'audience' must list this service's URL(s) as the EHR addresses it"
RECORD_AUDIENCES = "'consultations_audience' must list the URL(s) tokens for the consultation API carry"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[1, 2]", ISSUERS),
        ('{"audience": ["a"]}', ISSUERS),
        ('{"audience": ["a"], "issuers": ["x"]}', ISSUERS),
        ('{"audience": ["a"], "issuers": {}}', ISSUERS),
        ('{"issuers": {"i": {"jwks_url": "u"}}}', AUDIENCES),
        ('{"audience": [], "issuers": {"i": {"jwks_url": "u"}}}', AUDIENCES),
        ('{"audience": ["a", 2], "issuers": {"i": {"jwks_url": "u"}}}', AUDIENCES),
        ('{"audience": "a", "consultations_audience": [""], "issuers": {"i": {"jwks_url": "u"}}}', RECORD_AUDIENCES),
        ('{"audience": "a", "consultations_audience": [3], "issuers": {"i": {"jwks_url": "u"}}}', RECORD_AUDIENCES),
        ('{"audience": "a", "consultations_audience": {"u": 1}, "issuers": {"i": {"jwks_url": "u"}}}', RECORD_AUDIENCES),
        ('{"audience": "a", "issuers": {"i": "u"}}', "issuer 'i' needs jwks_url or jwks_file"),
        ('{"audience": "a", "issuers": {"i": {"url": "u"}}}', "issuer 'i' needs jwks_url or jwks_file"),
    ],
)
def test_a_configuration_that_cannot_be_used_names_the_key(tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "trust.yaml"
    config.write_text(text)
    with pytest.raises(AuthConfigError) as error:
        AuthConfig.load(config)
    assert str(error.value) == f"{config}: {message}"


def test_a_configuration_or_key_file_that_cannot_be_read_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "absent.yaml"
    with pytest.raises(AuthConfigError, match=rf"^{missing}: cannot read the trust configuration: \[Errno 2\]"):
        AuthConfig.load(missing)
    config = tmp_path / "trust.yaml"
    config.write_text("audience: [a\n")
    with pytest.raises(AuthConfigError, match=rf"^{config}: cannot read the trust configuration: "):
        AuthConfig.load(config)
    for content in (None, "{not json"):
        assert_unusable_key_file(tmp_path, content)


def assert_unusable_key_file(folder: Path, content: str | None, why: str = "") -> None:
    config, jwks = folder / "trust.yaml", folder / "keys.json"
    jwks.unlink(missing_ok=True)
    if content is not None:
        jwks.write_text(content)
    config.write_text(json.dumps({"audience": "a", "issuers": {ISS: {"jwks_file": "keys.json"}}}))
    with pytest.raises(AuthConfigError, match=rf"^{config}: issuer '{ISS}': jwks_file {jwks} is not a usable JWKS: ") as error:
        AuthConfig.load(config)
    assert str(error.value).endswith(why)


@pytest.mark.parametrize(
    ("content", "why"),
    [
        ('{"keys": []}', "The JWK Set did not contain any keys"),
        ("{}", "The JWK Set did not contain any keys"),
        ('{"keys": [{"kty": "nope"}]}', "The JWK Set did not contain any usable keys. Perhaps 'cryptography' is not installed?"),
        ("[]", "a JWKS is a JSON object with 'keys', not list"),
        ('"keys"', "a JWKS is a JSON object with 'keys', not str"),
    ],
)
def test_a_key_file_without_a_usable_key_is_a_configuration_error(tmp_path: Path, content: str, why: str) -> None:
    """Not a traceback at start: `serve` names a configuration error and exits 2 (PyJWT raises
    PyJWKSetError, no PyJWKError, for a set without usable keys)."""
    assert_unusable_key_file(tmp_path, content, why)


# --- the verifier -------------------------------------------------------------------------------


def test_a_valid_token_gives_its_claims_and_is_remembered_once(verifier: Verifier, store: Store) -> None:
    exp = int(time.time()) + 300
    signed = token(jti="once", exp=exp, sub="client")
    claims = verifier.verify(f"Bearer {signed}")
    assert (claims["iss"], claims["jti"], claims["sub"], claims["exp"]) == (ISS, "once", "client", exp)
    with store.engine.connect() as conn:
        assert conn.execute(select(tokens)).all() == [(ISS, "once", dt.datetime.fromtimestamp(exp, dt.UTC).replace(tzinfo=None))]
    assert refused(verifier, f"Bearer {signed}") == "the JWT id (jti) 'once' was already used: a token may be used once"


@pytest.mark.parametrize("authorization", ["  bearer {}  ", "BEARER {}", "Bearer    {}"])
def test_the_bearer_scheme_is_case_insensitive_and_spaces_are_ignored(verifier: Verifier, authorization: str) -> None:
    assert verifier.verify(authorization.format(token()))["iss"] == ISS


@pytest.mark.parametrize("authorization", [None, "", "   ", "Basic {}", "Bearer", "Bearer   ", "{}"])
def test_a_request_without_a_bearer_token_is_refused(verifier: Verifier, authorization: str | None) -> None:
    shown = authorization.format(token()) if authorization else authorization
    assert refused(verifier, shown) == "missing 'Authorization: Bearer <JWT>' header; CDS Hooks requests must be signed by a trusted EHR"


def test_what_is_not_a_jwt_is_refused(verifier: Verifier) -> None:
    assert refused(verifier, "Bearer not-a-jwt").startswith("the bearer token is not a JWT: ")


def test_only_asymmetric_algorithms_are_accepted(verifier: Verifier) -> None:
    shared = jwt.encode({"iss": ISS, "aud": AUDIENCE, "exp": int(time.time()) + 60, "jti": "s1"}, "secret" * 6, algorithm="HS256")
    assert refused(verifier, f"Bearer {shared}") == (
        "JWT alg 'HS256' is not accepted; use an asymmetric algorithm: RS256, RS384, RS512, ES256, ES384, ES512, PS256, PS384, PS512"
    )
    unsigned = jwt.encode({"iss": ISS, "aud": AUDIENCE, "exp": int(time.time()) + 60, "jti": "n1"}, None, algorithm="none")
    assert refused(verifier, f"Bearer {unsigned}").startswith("JWT alg 'none' is not accepted")


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_every_asymmetric_algorithm_listed_is_accepted(tmp_path: Path, store: Store, alg: str) -> None:
    verifier = Verifier(AuthConfig.load(write_trust(tmp_path / "trust", [(alg, "k1")])), store)
    assert verifier.verify(f"Bearer {token(alg)}")["iss"] == ISS


def test_only_trusted_issuers(verifier: Verifier) -> None:
    assert (
        refused(verifier, f"Bearer {token(iss='https://rogue.example')}") == "issuer 'https://rogue.example' is not trusted by this service"
    )
    numbered = jwt.PyJWS().encode(json.dumps({"iss": 12, "aud": AUDIENCE}).encode(), key_for("ES384"), algorithm="ES384")
    assert refused(verifier, f"Bearer {numbered}") == "issuer '12' is not trusted by this service"  # PyJWT would not make one
    assert refused(verifier, f"Bearer {token(iss=None)}") == "issuer 'None' is not trusted by this service"
    listed = jwt.PyJWS().encode(json.dumps({"iss": [ISS], "aud": AUDIENCE}).encode(), key_for("ES384"), algorithm="ES384")
    assert refused(verifier, f"Bearer {listed}") == f"issuer '['{ISS}']' is not trusted by this service"


def test_the_key_is_chosen_by_kid(verifier: Verifier) -> None:
    assert verifier.verify(f"Bearer {token(kid='k2')}")["iss"] == ISS
    assert refused(verifier, f"Bearer {token(kid='k3')}") == f"no key with kid 'k3' in the JWKS of issuer '{ISS}'"
    signed_by_k2 = token(kid=None, signer=key_for("ES384", "k2"))
    assert refused(verifier, f"Bearer {signed_by_k2}") == "the JWT was rejected: Signature verification failed"
    assert verifier.verify(f"Bearer {token(kid=None)}")["iss"] == ISS  # no kid: the issuer's first key


def test_a_forged_signature_is_refused(verifier: Verifier) -> None:
    forged = token(signer=ec.generate_private_key(ec.SECP384R1()))
    assert refused(verifier, f"Bearer {forged}") == "the JWT was rejected: Signature verification failed"


def test_keys_fetched_from_the_issuers_url_are_cached(tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    verifier = Verifier(AuthConfig.load(write_trust(tmp_path / "trust", [("ES384", "k1")])), store)
    assert list(verifier._clients) == [FETCHED]  # only the issuer whose keys are fetched has a client
    fetched: list[str] = []

    def fetch(client: jwt.PyJWKClient) -> Any:
        fetched.append(client.uri)
        return {"keys": [jwk("ES384", "k1")]}

    monkeypatch.setattr(jwt.PyJWKClient, "fetch_data", fetch)
    for _ in range(3):
        assert verifier.verify(f"Bearer {token(iss=FETCHED)}")["iss"] == FETCHED
    assert fetched == [FETCHED + "/jwks"]
    message = refused(verifier, f"Bearer {token(iss=FETCHED, kid='k9')}")
    assert message.startswith(f"the signing key of issuer '{FETCHED}' could not be obtained: Unable to find a signing key that matches")


def test_a_key_the_issuer_withdraws_is_refused_once_its_key_set_is_fetched_again(
    tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The key set is kept 5 minutes; a key is trusted only while the issuer's current set lists it
    (with PyJWT's cache_keys, a key once used stayed trusted for the life of the process)."""
    verifier = Verifier(AuthConfig.load(write_trust(tmp_path / "trust", [("ES384", "k1")])), store)
    served = {"keys": [jwk("ES384", "k1")]}
    monkeypatch.setattr(jwt.PyJWKClient, "fetch_data", lambda client: served)
    assert verifier.verify(f"Bearer {token(iss=FETCHED)}")["iss"] == FETCHED
    served = {"keys": [jwk("ES384", "k2")]}  # k1 withdrawn (revoked, rotated out)
    assert verifier.verify(f"Bearer {token(iss=FETCHED)}")["iss"] == FETCHED  # within the set's 5 minutes
    later = time.monotonic() + 301
    monkeypatch.setattr(jwt.jwk_set_cache.time, "monotonic", lambda: later)
    message = refused(verifier, f"Bearer {token(iss=FETCHED)}")
    assert message.startswith(f"the signing key of issuer '{FETCHED}' could not be obtained: Unable to find a signing key that matches")


def test_an_issuer_url_that_cannot_be_fetched_is_named(tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    verifier = Verifier(AuthConfig.load(write_trust(tmp_path / "trust", [("ES384", "k1")])), store)

    def fail(client: jwt.PyJWKClient) -> Any:
        raise jwt.PyJWKClientConnectionError("connection refused")

    monkeypatch.setattr(jwt.PyJWKClient, "fetch_data", fail)
    message = refused(verifier, f"Bearer {token(iss=FETCHED)}")
    assert message == f"the signing key of issuer '{FETCHED}' could not be obtained: connection refused"


def test_an_issuer_url_serving_no_usable_key_is_refused_not_a_server_error(
    tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    verifier = Verifier(AuthConfig.load(write_trust(tmp_path / "trust", [("ES384", "k1")])), store)
    monkeypatch.setattr(jwt.PyJWKClient, "fetch_data", lambda client: {"keys": []})
    message = refused(verifier, f"Bearer {token(iss=FETCHED)}")
    assert message == f"the signing key of issuer '{FETCHED}' could not be obtained: The JWK Set did not contain any keys"


def test_the_audience_is_the_endpoint_s(verifier: Verifier) -> None:
    assert refused(verifier, f"Bearer {token(aud='https://elsewhere.example')}") == "the JWT was rejected: Audience doesn't match"
    assert verifier.verify(f"Bearer {token(aud=RECORDS)}", [RECORDS])["aud"] == RECORDS
    assert refused(verifier, f"Bearer {token()}", [RECORDS]) == "the JWT was rejected: Audience doesn't match"
    assert refused(verifier, f"Bearer {token()}", []) == (
        "no token is accepted here: the trust configuration names no consultations_audience"
    )


@pytest.mark.parametrize("claim", ["aud", "exp", "iat", "jti"])
def test_the_claims_cds_hooks_requires(verifier: Verifier, claim: str) -> None:
    assert refused(verifier, f"Bearer {token(**{claim: None})}") == f'the JWT was rejected: Token is missing the "{claim}" claim'


def test_sub_is_not_required(verifier: Verifier) -> None:
    assert "sub" not in verifier.verify(f"Bearer {token()}")


def test_thirty_seconds_of_clock_skew_are_allowed(verifier: Verifier) -> None:
    now = int(time.time())
    assert verifier.verify(f"Bearer {token(iat=now - 120, exp=now - 20)}")["iss"] == ISS
    assert refused(verifier, f"Bearer {token(iat=now - 120, exp=now - 40)}") == "the JWT was rejected: Signature has expired"


@pytest.mark.parametrize(("jti", "accepted"), [("j", True), ("j" * 255, True), ("j" * 256, False), ("", False)])
def test_the_jti_fits_the_replay_table(verifier: Verifier, jti: str, accepted: bool) -> None:
    if accepted:
        assert verifier.verify(f"Bearer {token(jti=jti)}")["jti"] == jti
    else:
        assert refused(verifier, f"Bearer {token(jti=jti)}") == "the JWT id (jti) must be a string of 1 to 255 characters"


def test_a_token_living_longer_than_an_hour_is_refused(verifier: Verifier) -> None:
    now = int(time.time())
    assert verifier.verify(f"Bearer {token(exp=now + 3540)}")["iss"] == ISS
    message = refused(verifier, f"Bearer {token(exp=now + 3700)}")
    assert message.startswith("the JWT's exp is 3") and message.endswith(" s away; CDS Hooks tokens live minutes, at most 1:00:00 here")
    assert abs(int(message.split()[4]) - 3700) <= 5


def test_the_expiry_remembered_is_the_utc_instant_on_any_machine(verifier: Verifier, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    exp = int(time.time()) + 300
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        verifier.verify(f"Bearer {token(jti='tz', exp=exp)}")
    finally:
        monkeypatch.undo()
        time.tzset()
    with store.engine.connect() as conn:
        assert conn.execute(select(tokens.c.expires_at)).scalar() == dt.datetime.fromtimestamp(exp, dt.UTC).replace(tzinfo=None)


def test_configuration_files_are_utf_8_whatever_the_locale(tmp_path: Path) -> None:
    import locale

    config = write_trust(tmp_path / "trust", [("ES384", "clé-1")], audience="https://cds.example.org/für-alle")
    before = locale.setlocale(locale.LC_CTYPE)
    locale.setlocale(locale.LC_CTYPE, "C")  # an ASCII locale: a file read in the locale's encoding would fail
    try:
        loaded = AuthConfig.load(config)
    finally:
        locale.setlocale(locale.LC_CTYPE, before)
    assert loaded.audience == ("https://cds.example.org/für-alle",)
    jwks = loaded.issuers[ISS].jwks
    assert jwks is not None and [k.key_id for k in jwks.keys] == ["clé-1"]
