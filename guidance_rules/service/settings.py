"""Service settings from the environment, so every uvicorn worker process reads the same ones
(`guidance-rules serve` sets them from its options before starting the workers). pydantic-settings
reads and validates them; each bad value is named by its variable, with what would be valid."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from guidance_rules.model import Imaging

from .store import DEFAULT_URL

PREFIX = "GUIDANCE_RULES_"
LOOPBACK = ("localhost", "127.0.0.1", "::1")
Names = Annotated[tuple[str, ...], NoDecode]  # a comma-separated list in the environment


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_ignore_empty=True, frozen=True, extra="ignore", validate_by_name=True, validate_by_alias=True)

    db_url: str = Field(DEFAULT_URL, validation_alias=PREFIX + "DB")
    auth_config: str | None = Field(None, validation_alias=PREFIX + "AUTH_CONFIG")
    insecure_no_auth: bool = Field(False, validation_alias=PREFIX + "INSECURE_NO_AUTH")
    available: Names = Field(("ultrasound", "fluoroscopy"), validation_alias=PREFIX + "AVAILABLE")
    patient_key: bytes | None = Field(None, validation_alias=PREFIX + "PATIENT_KEY")
    max_body: int = Field(1_048_576, validation_alias=PREFIX + "MAX_BODY")
    rules_dir: str | None = Field(None, validation_alias=PREFIX + "RULES")
    cors_origins: Names = Field(("*",), validation_alias=PREFIX + "CORS_ORIGINS")
    # the address EHRs reach this service at; card links use it
    public_url: str | None = Field(None, validation_alias=PREFIX + "PUBLIC_URL")
    # the Host names requests may carry (card links use the Host when no public URL is set); others get 400
    allowed_hosts: Names = Field(LOOPBACK, validation_alias=PREFIX + "ALLOWED_HOSTS")
    # seconds from connecting (or the end of the last answer) to a request's full head
    header_timeout: float = Field(10.0, validation_alias=PREFIX + "HEADER_TIMEOUT")
    # seconds from a request's head to the end of its body
    body_timeout: float = Field(30.0, validation_alias=PREFIX + "BODY_TIMEOUT")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """The settings from the process environment, or from `environ` alone; a bad value is a
        ValueError naming its variable."""
        try:
            if environ is None:
                return cls()
            return cls.model_validate({k: v for k, v in environ.items() if k.startswith(PREFIX) and v != ""})
        except ValidationError as error:
            first = error.errors(include_url=False)[0]
            name = PREFIX + str(first["loc"][0]).removeprefix(PREFIX).upper() if first["loc"] else PREFIX
            raise ValueError(str(first["msg"]).removeprefix("Value error, ") if "ctx" in first else f"{name}: {first['msg']}") from None

    @field_validator("available", "cors_origins", "allowed_hosts", mode="before")
    @classmethod
    def _names(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("available")
    @classmethod
    def _modalities(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        valid = {i.value for i in Imaging}
        bad = [a for a in value if a not in valid]
        if bad:
            raise ValueError(f"{PREFIX}AVAILABLE: unknown modality {', '.join(bad)}; valid: {', '.join(sorted(valid))}")
        return value

    @field_validator("allowed_hosts")
    @classmethod
    def _lower(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(h.lower() for h in value)

    @field_validator("max_body", mode="before")
    @classmethod
    def _size(cls, value: Any) -> Any:
        if isinstance(value, str) and not (value.isdigit() and int(value) > 0):
            raise ValueError(f"{PREFIX}MAX_BODY: '{value}' is not a size in bytes; give a whole number above 0, e.g. 1048576")
        return value

    @field_validator("header_timeout", "body_timeout", mode="before")
    @classmethod
    def _seconds(cls, value: Any, info: Any) -> Any:
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            seconds = 0.0
        if not 0 < seconds <= 3600:
            name = PREFIX + str(info.field_name).upper()
            raise ValueError(f"{name}: '{value}' is not a time in seconds; give a number above 0 and at most 3600, e.g. 10")
        return seconds

    @field_validator("public_url")
    @classmethod
    def _base_address(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
            raise ValueError(
                f"{PREFIX}PUBLIC_URL: '{value}' is not the service's base address; "
                "give an absolute http(s) URL with no query, e.g. https://cds.example.org/guidance"
            )
        return value.rstrip("/")

    def hosts(self) -> frozenset[str]:
        """The Host names accepted: the configured ones and the public URL's."""
        public = urlsplit(self.public_url).hostname if self.public_url else None
        return frozenset(self.allowed_hosts) | ({public.lower()} if public else set())
