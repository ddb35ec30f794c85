"""Service settings from the environment, so every uvicorn worker process reads the same ones
(`guidance-rules serve` sets them from its options before starting the workers)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from guidance_rules.model import Imaging

from .store import DEFAULT_URL

PREFIX = "GUIDANCE_RULES_"
LOOPBACK = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class Settings:
    db_url: str = DEFAULT_URL
    auth_config: str | None = None
    insecure_no_auth: bool = False
    available: tuple[str, ...] = ("ultrasound", "fluoroscopy")
    patient_key: bytes | None = None
    max_body: int = 1_048_576
    rules_dir: str | None = None
    cors_origins: tuple[str, ...] = ("*",)
    public_url: str | None = None  # the address EHRs reach this service at; card links use it
    # the Host names requests may carry (card links use the Host when no public URL is set); others get 400
    allowed_hosts: tuple[str, ...] = LOOPBACK
    header_timeout: float = 10.0  # seconds from connecting (or the end of the last answer) to a request's full head
    body_timeout: float = 30.0  # seconds from a request's head to the end of its body

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)

        def get(name: str) -> str | None:
            value = env.get(PREFIX + name)
            return value if value not in (None, "") else None

        available = tuple(a.strip() for a in (get("AVAILABLE") or "ultrasound,fluoroscopy").split(",") if a.strip())
        valid = {i.value for i in Imaging}
        bad = [a for a in available if a not in valid]
        if bad:
            raise ValueError(f"{PREFIX}AVAILABLE: unknown modality {', '.join(bad)}; valid: {', '.join(sorted(valid))}")
        key = get("PATIENT_KEY")
        max_body = get("MAX_BODY")
        if max_body is not None and not (max_body.isdigit() and int(max_body) > 0):
            raise ValueError(f"{PREFIX}MAX_BODY: '{max_body}' is not a size in bytes; give a whole number above 0, e.g. 1048576")
        public_url = get("PUBLIC_URL")
        if public_url is not None:
            parts = urlsplit(public_url)
            if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
                raise ValueError(
                    f"{PREFIX}PUBLIC_URL: '{public_url}' is not the service's base address; "
                    "give an absolute http(s) URL with no query, e.g. https://cds.example.org/guidance"
                )
        timeouts = {name: _seconds(get, name) for name in ("HEADER_TIMEOUT", "BODY_TIMEOUT")}
        hosts = tuple(h.strip().lower() for h in (get("ALLOWED_HOSTS") or ",".join(LOOPBACK)).split(",") if h.strip())
        return cls(
            db_url=get("DB") or DEFAULT_URL,
            auth_config=get("AUTH_CONFIG"),
            insecure_no_auth=(get("INSECURE_NO_AUTH") or "").lower() in ("1", "true", "yes"),
            available=available,
            patient_key=key.encode() if key else None,
            max_body=int(max_body) if max_body else 1_048_576,
            rules_dir=get("RULES"),
            cors_origins=tuple((get("CORS_ORIGINS") or "*").split(",")),
            public_url=public_url.rstrip("/") if public_url else None,
            allowed_hosts=hosts,
            header_timeout=timeouts["HEADER_TIMEOUT"] or cls.header_timeout,
            body_timeout=timeouts["BODY_TIMEOUT"] or cls.body_timeout,
        )

    def hosts(self) -> frozenset[str]:
        """The Host names accepted: the configured ones and the public URL's."""
        public = urlsplit(self.public_url).hostname if self.public_url else None
        return frozenset(self.allowed_hosts) | ({public.lower()} if public else set())


def _seconds(get: Callable[[str], str | None], name: str) -> float | None:
    value = get(name)
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds <= 3600:
        raise ValueError(f"{PREFIX}{name}: '{value}' is not a time in seconds; give a number above 0 and at most 3600, e.g. 10")
    return seconds
