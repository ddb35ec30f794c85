"""Settings come from GUIDANCE_RULES_* variables (pydantic-settings); each bad value is named."""

from __future__ import annotations

import pytest

from guidance_rules.service.settings import Settings


def test_lists_and_switches_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "GUIDANCE_RULES_AVAILABLE": "fluoroscopy",
            "GUIDANCE_RULES_ALLOWED_HOSTS": "CDS.example.org, cds.internal",
            "GUIDANCE_RULES_INSECURE_NO_AUTH": "yes",
            "GUIDANCE_RULES_PUBLIC_URL": "https://cds.example.org/guidance/",
            "GUIDANCE_RULES_PATIENT_KEY": "k1",
            "GUIDANCE_RULES_DB": "",  # empty is not set
        }
    )
    assert settings.available == ("fluoroscopy",) and settings.insecure_no_auth and settings.patient_key == b"k1"
    assert settings.hosts() == {"cds.example.org", "cds.internal"} and settings.public_url == "https://cds.example.org/guidance"
    assert settings.db_url.startswith("sqlite:///")


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("AVAILABLE", "xray", "unknown modality xray"),
        ("INSECURE_NO_AUTH", "perhaps", "valid boolean"),  # never read as "off" or "on" by guess
        ("BODY_TIMEOUT", "0", "not a time in seconds"),
    ],
)
def test_a_bad_value_is_named_by_its_variable(name: str, value: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=f"GUIDANCE_RULES_{name}: .*{fragment}"):
        Settings.from_env({f"GUIDANCE_RULES_{name}": value})
