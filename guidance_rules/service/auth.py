"""CDS Hooks JWT verification: asymmetric keys from each trusted issuer's JWKS, `iss`
allowlist, `aud`, `exp`, and `jti` replay (remembered in the shared database, so a token
cannot be replayed against another worker or replica).

The trust configuration is a JSON or YAML file:
    audience: ["https://cds.example.org/cds-services"]   # this service's URLs as the EHR sends them
    consultations_audience: ["https://cds.example.org/api/v1/consultations"]  # optional, see below
    issuers:
      "https://ehr.example.org": {jwks_url: "https://ehr.example.org/.well-known/jwks.json"}
      "https://sandbox.example":  {jwks_file: "/etc/guidance-rules/sandbox-jwks.json"}

The consultation API (`GET /api/v1/consultations/{id}`) reads the record, so it has an audience of
its own: a token an EHR minted to call a hook service is not one for reading records. Without
`consultations_audience` that API accepts no token at all.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import yaml

from guidance_rules.errors import GuidanceRulesError

from .errors import Unauthorized
from .store import Store

ALGORITHMS = ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512")
LEEWAY_SECONDS = 30
MAX_JTI = 255  # the replay table's column holds 500
# CDS Hooks recommends an expiry of at most five minutes: a token meant to live for days is refused
# (and its jti, remembered until then, cannot fill the replay table).
MAX_LIFETIME = dt.timedelta(hours=1)


class AuthConfigError(GuidanceRulesError, ValueError):
    """The trust configuration cannot be used: names the file and the key at fault."""


@dataclass(frozen=True)
class Issuer:
    name: str
    jwks_url: str | None
    jwks: jwt.PyJWKSet | None


@dataclass(frozen=True)
class AuthConfig:
    audience: tuple[str, ...]
    issuers: dict[str, Issuer]
    consultations_audience: tuple[str, ...] = ()

    @classmethod
    def load(cls, path: str | Path) -> AuthConfig:
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as error:
            raise AuthConfigError(f"{path}: cannot read the trust configuration: {error}") from None
        if not isinstance(data, dict) or not isinstance(data.get("issuers"), dict) or not data["issuers"]:
            raise AuthConfigError(f"{path}: 'issuers' must map each trusted iss to {{jwks_url: ...}} or {{jwks_file: ...}}")
        audience = data.get("audience")
        if isinstance(audience, str):
            audience = [audience]
        if not audience or not all(isinstance(a, str) for a in audience):
            raise AuthConfigError(f"{path}: 'audience' must list this service's URL(s) as the EHR addresses it")
        records = data.get("consultations_audience") or []
        if isinstance(records, str):
            records = [records]
        if not isinstance(records, list) or not all(isinstance(a, str) and a for a in records):
            raise AuthConfigError(f"{path}: 'consultations_audience' must list the URL(s) tokens for the consultation API carry")
        issuers = {}
        for name, spec in data["issuers"].items():
            if not isinstance(spec, dict) or not ({"jwks_url", "jwks_file"} & set(spec)):
                raise AuthConfigError(f"{path}: issuer '{name}' needs jwks_url or jwks_file")
            keys = None
            if "jwks_file" in spec:
                file = (path.parent / spec["jwks_file"]).resolve()
                try:
                    keys = _key_set(json.loads(file.read_text(encoding="utf-8")))
                except (OSError, ValueError, jwt.PyJWTError) as error:  # PyJWKSetError: no usable key
                    raise AuthConfigError(f"{path}: issuer '{name}': jwks_file {file} is not a usable JWKS: {error}") from None
            issuers[name] = Issuer(name, spec.get("jwks_url"), keys)
        return cls(tuple(audience), issuers, tuple(records))


def _key_set(data: Any) -> jwt.PyJWKSet:
    if not isinstance(data, dict):
        raise ValueError(f"a JWKS is a JSON object with 'keys', not {type(data).__name__}")
    return jwt.PyJWKSet.from_dict(data)


class Verifier:
    def __init__(self, config: AuthConfig, store: Store):
        self.config = config
        self.store = store
        self._clients = {
            name: jwt.PyJWKClient(i.jwks_url, cache_keys=False, lifespan=300) for name, i in config.issuers.items() if i.jwks_url
        }

    def _key(self, issuer: Issuer, header: dict[str, Any], token: str) -> Any:
        kid = header.get("kid")
        if issuer.jwks is not None:
            for key in issuer.jwks.keys:
                if kid is None or key.key_id == kid:
                    return key.key
            raise Unauthorized(f"no key with kid '{kid}' in the JWKS of issuer '{issuer.name}'")
        try:
            return self._clients[issuer.name].get_signing_key_from_jwt(token).key
        except (jwt.PyJWKClientError, jwt.PyJWKSetError) as error:  # the second: the issuer serves no usable key
            raise Unauthorized(f"the signing key of issuer '{issuer.name}' could not be obtained: {error}") from None

    def verify(self, authorization: str | None, audiences: list[str] | None = None) -> dict[str, Any]:
        """The token's claims, or Unauthorized saying why not. `audiences` are the `aud` values
        this endpoint accepts (the configured ones when not given)."""
        if audiences == []:
            raise Unauthorized("no token is accepted here: the trust configuration names no consultations_audience")
        scheme, _, token = (authorization or "").strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():  # the scheme is case-insensitive (RFC 7235)
            raise Unauthorized("missing 'Authorization: Bearer <JWT>' header; CDS Hooks requests must be signed by a trusted EHR")
        token = token.strip()
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as error:
            raise Unauthorized(f"the bearer token is not a JWT: {error}") from None
        alg = header.get("alg")
        if alg not in ALGORITHMS:
            raise Unauthorized(f"JWT alg '{alg}' is not accepted; use an asymmetric algorithm: {', '.join(ALGORITHMS)}")
        iss = unverified.get("iss")
        issuer = self.config.issuers.get(iss) if isinstance(iss, str) else None
        if issuer is None:
            raise Unauthorized(f"issuer '{iss}' is not trusted by this service")
        key = self._key(issuer, header, token)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=audiences or list(self.config.audience),
                issuer=iss,
                leeway=LEEWAY_SECONDS,
                # the claims CDS Hooks 2.0 requires; `sub` is not one of them (issue 20, point 4)
                options={"require": ["iss", "aud", "exp", "iat", "jti"]},
            )
        except jwt.PyJWTError as error:
            raise Unauthorized(f"the JWT was rejected: {error}") from None
        if not isinstance(claims["jti"], str) or not 0 < len(claims["jti"]) <= MAX_JTI:
            raise Unauthorized(f"the JWT id (jti) must be a string of 1 to {MAX_JTI} characters")
        lifetime = claims["exp"] - time.time()  # PyJWT checked exp is a number, not yet past
        if lifetime > MAX_LIFETIME.total_seconds():
            raise Unauthorized(f"the JWT's exp is {lifetime:.0f} s away; CDS Hooks tokens live minutes, at most {MAX_LIFETIME} here")
        expires = dt.datetime.fromtimestamp(int(claims["exp"]), dt.UTC)
        if not self.store.remember_token(str(iss), str(claims["jti"]), expires):
            raise Unauthorized(f"the JWT id (jti) '{claims['jti']}' was already used: a token may be used once")
        return claims
