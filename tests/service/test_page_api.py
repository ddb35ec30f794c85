"""The page's endpoints over HTTP, without a browser: the schema is the command line's, the site
defaults are the rule base's, the explained answer is the library's, problems are named by field,
the page loads nothing from elsewhere, and a card's link carries its case."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from guidance_rules.model import Case
from guidance_rules.recommendation.recommender import Recommender
from guidance_rules.recommendation.whatif import inputs_that_matter
from guidance_rules.service.page import STATIC, case_query, page_url
from tests.conftest import EXAMPLES
from tests.service.conftest import Server

EXPLAINED = "/api/v1/recommendations/explained"


@pytest.fixture(scope="module")
def recommender() -> Recommender:
    return Recommender()


def test_schema_is_the_command_lines(server: Server) -> None:
    cli = subprocess.run([sys.executable, "-m", "guidance_rules", "schema"], capture_output=True, text=True, timeout=120, check=True)
    assert server.get("/api/v1/case-schema").json() == json.loads(cli.stdout)


def test_sites_carry_the_rule_base_defaults(server: Server, recommender: Recommender) -> None:
    body = server.get("/api/v1/sites").json()
    knowledge = recommender.knowledge
    assert list(body["sites"]) == list(knowledge.sites)
    for key, site in knowledge.sites.items():
        assert body["sites"][key] == {"title": site.title, "why": site.why, "defaults": dict(site.defaults)}
    assert body["field_defaults"] == dict(knowledge.field_defaults)
    assert body["identity_fields"] == list(knowledge.identity_fields)
    assert body["clinic_equipment"] == ["ultrasound", "fluoroscopy"]


@pytest.mark.parametrize("name", ["01-knee-steroid", "06-hip-contrast", "33-custom-superficial-ligament"])
def test_explained_is_the_library_answer_and_its_inputs_that_matter(server: Server, recommender: Recommender, name: str) -> None:
    case = json.loads((EXAMPLES / f"{name}.json").read_text())["case"]
    response = server.post(EXPLAINED, case)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["recommendation"] == server.post("/api/v1/recommendations", case).json()
    assert body["inputs_that_matter"] == [a.model_dump(mode="json") for a in inputs_that_matter(case, recommender)]


@pytest.mark.parametrize(
    ("case", "fields"),
    [
        ({"site": "kne", "injectate": "prp"}, {"site"}),
        ({"site": "knee", "injectate": "prp", "tissue": "bursa"}, {"tissue", "site"}),
        ({"site": "hip", "injectate": "prp", "palpable": True}, {"depth", "palpable"}),
        ({"site": "knee"}, {"injectate"}),
        ({"site": "knee", "injectate": "prp", "palpable": "maybe", "colour": 1}, {"palpable", "colour"}),
    ],
)
def test_invalid_cases_get_the_plain_apis_field_named_problems(server: Server, case: dict[str, Any], fields: set[str]) -> None:
    response = server.post(EXPLAINED, case)
    assert response.status_code == 400
    assert response.json() == server.post("/api/v1/recommendations", case).json()
    assert {i["expression"][0] for i in response.json()["issue"]} == fields


def test_not_a_case_is_refused(server: Server) -> None:
    assert server.post(EXPLAINED, [1, 2]).status_code == 400
    response = server.post(EXPLAINED, None, content=b"{}", headers={"content-type": "text/plain"})
    assert response.status_code == 415


def test_page_loads_nothing_from_elsewhere(server: Server) -> None:
    response = server.get("/page")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in response.headers["content-security-policy"]
    for path in sorted(STATIC.iterdir()):
        text = path.read_text()
        assert not re.search(r"(?:src|href)\s*=\s*[\"'](?:https?:)?//", text), f"{path.name} refers to another host"
        assert "@import" not in text and "url(http" not in text
        assert server.get(f"/page/static/{path.name}").status_code == 200
    root = server.get("/", follow_redirects=False)
    assert root.status_code == 307 and root.headers["location"] == "/page"


def test_case_query_keeps_every_given_value_and_nothing_else() -> None:
    case = Case(site="knee", injectate="prp", palpable=False, anatomy_variance=("obesity", "effusion"), available_modalities=())
    params = dict(parse_qsl(case_query(case), keep_blank_values=True))
    assert params == {
        "site": "knee",
        "injectate": "prp",
        "palpable": "false",
        "anatomy_variance": "effusion,obesity",
        "available_modalities": "",
    }
    url = urlsplit(page_url("http://clinic.example:8080/", case))
    assert (url.netloc, url.path) == ("clinic.example:8080", "/page")
