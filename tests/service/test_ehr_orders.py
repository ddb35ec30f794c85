"""Orders and history as EHRs send them (issue 20, points 2, 3 and 7): the record never silently
dropped, one bad resource never failing the hook, nothing from the request rendered as markup."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from guidance_rules import Recommender, recommend
from guidance_rules.model import Injectate, Modality
from guidance_rules.rulebase.load import default_knowledge
from guidance_rules.service.mapping import load_mapping

from .conftest import Server
from .fhir_examples import (
    HCPCS,
    LOCAL_SITE,
    PATIENT,
    SCT,
    bmi,
    coding,
    condition,
    hook_request,
    injection,
    searchset,
    spec_nutrition_and_antibiotic,
    surgery,
)

pytest.importorskip("fhir.resources", reason="the service extra is not installed (pip install -e '.[service]')")

from guidance_rules.service.fhir import OrderReader

SELECT = "/cds-services/guidance-rules-order-select"
SIGN = "/cds-services/guidance-rules-order-sign"
KNOWLEDGE = default_knowledge()
MAPPING = load_mapping(KNOWLEDGE)
KNEE = [coding(SCT, "49076000")]
HOSTILE = "[Click to confirm](https://evil.example/x) <img src=https://evil.example/i.png> ![i](https://evil.example/p)"


def record(*, procedures: list[dict[str, Any]] = (), conditions: list[dict[str, Any]] = (), observations: list[dict[str, Any]] = ()) -> Any:  # type: ignore[assignment]
    return {"conditions": searchset(*conditions), "observations": searchset(*observations), "procedures": searchset(*procedures)}


def read_knee(prefetch: dict[str, Any] | None, resources: list[dict[str, Any]] | None = None) -> Any:
    [reading] = OrderReader(MAPPING).read(
        {"resourceType": "Bundle", "entry": [{"resource": r} for r in resources or injection(KNEE)]}, ["ServiceRequest/inj-1"], prefetch
    )
    return reading


def uncategorised(site_code: str, text: str = "Arthroscopy") -> dict[str, Any]:
    operation = surgery(site_code, text)
    del operation["category"]
    return operation


# --- 2. history never silently dropped ---------------------------------------------------------


def test_a_procedure_with_no_category_at_the_site_is_possible_prior_surgery() -> None:
    reading = read_knee(record(procedures=[uncategorised("49076000")]))
    assert "prior_surgery" in reading.case(None)["anatomy_variance"]
    assert any("prior_surgery assumed" in n and "no category says whether it was surgery" in n for n in reading.notes)


def test_surgery_at_a_body_structure_the_mapping_does_not_list_is_possible_prior_surgery() -> None:
    reading = read_knee(record(procedures=[surgery("1234567009", "Osteotomy")]))
    assert reading.case(None)["anatomy_variance"] == ["prior_surgery"]
    assert any("its body site is not in the mapping" in n and "1234567009" in n for n in reading.notes)
    nowhere = surgery("49076000")
    del nowhere["bodySite"]
    assert read_knee(record(procedures=[nowhere])).case(None)["anatomy_variance"] == ["prior_surgery"]


def test_what_the_record_can_read_still_decides() -> None:
    """Not every procedure is doubted: one coded elsewhere, or coded as not surgery, is read."""
    assert read_knee(record(procedures=[uncategorised("24136001")])).case(None)["anatomy_variance"] == []  # the hip
    imaging = surgery("49076000", "Knee MRI")
    imaging["category"] = {"coding": [coding("urn:example:category", "imaging")]}
    assert read_knee(record(procedures=[imaging])).case(None)["anatomy_variance"] == []
    assert read_knee(record()).case(None)["anatomy_variance"] == []


def test_unreadable_conditions_and_observations_are_never_no_history() -> None:
    broken = condition("38341003")  # hypertension, but without its subject (1..1): it does not validate
    del broken["subject"]
    reading = read_knee(record(conditions=[broken]))
    assert reading.case(None)["anatomy_variance"] == ["obesity"]
    assert any("in prefetch 'conditions' could not be read" in n for n in reading.notes)
    uncoded = condition("38341003")
    del uncoded["code"]
    assert read_knee(record(conditions=[uncoded])).case(None)["anatomy_variance"] == ["obesity"]
    preliminary = bmi(36.0)
    preliminary["status"] = "preliminary"
    assert read_knee(record(observations=[preliminary])).case(None)["anatomy_variance"] == ["obesity"]
    voided = bmi(36.0)
    voided["status"] = "entered-in-error"
    assert read_knee(record(observations=[voided])).case(None)["anatomy_variance"] == []


def test_a_prefetch_that_is_missing_failed_or_not_a_bundle_is_never_no_history() -> None:
    assert read_knee(None).case(None)["anatomy_variance"] == ["obesity", "prior_surgery"]
    failed = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "timeout"}]}
    assert read_knee({**record(), "procedures": failed}).case(None)["anatomy_variance"] == ["prior_surgery"]
    assert read_knee({**record(), "procedures": {"resourceType": "Patient"}}).case(None)["anatomy_variance"] == ["prior_surgery"]


def test_no_unreadable_record_lets_a_card_endorse_landmark() -> None:
    """Fail safe, over every catalogue site and injectate: each variance the mapping reads an
    unreadable part of the record as keeps landmark out."""
    unreadable = MAPPING.spec.variance.unreadable
    recommender = Recommender(KNOWLEDGE)
    for variance in {unreadable.conditions, unreadable.observations, unreadable.procedures}:
        for site in KNOWLEDGE.sites:
            for injectate in Injectate:
                rec = recommender.recommend({"site": site, "injectate": injectate.value, "anatomy_variance": [variance.value]})
                assert rec.modality is not Modality.LANDMARK, (variance, site, injectate)


def test_the_card_for_a_knee_with_unplaced_surgery_is_not_landmark(server: Server) -> None:
    """The issue's case: landmark knee order, a completed procedure with no category at the knee."""
    card = only_card(server.post(SELECT, hook_request(injection(KNEE), prefetch=record(procedures=[uncategorised("49076000")]))))
    expected = recommend({"site": "knee", "injectate": "corticosteroid", "anatomy_variance": ["prior_surgery"]})
    assert expected.modality is not Modality.LANDMARK
    assert card["indicator"] == "warning" and card["summary"].startswith(expected.modality.value.capitalize())
    assert "prior\\_surgery" not in card["detail"] and "anatomy_variance prior_surgery assumed" in card["detail"]


# --- 3. one bad resource never fails the hook ---------------------------------------------------


def only_card(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    [card] = response.json()["cards"]
    assert isinstance(card, dict)
    return card


def spec_orders_with_an_injection() -> dict[str, Any]:
    """The specification's example orders (its NutritionOrder has no `intent`, 1..1 in R4) beside a knee injection."""
    req = spec_nutrition_and_antibiotic()
    del req["context"]["draftOrders"]["entry"][0]["resource"]["intent"]
    req["context"]["draftOrders"]["entry"] += [{"resource": r} for r in injection(KNEE)]
    return req


def test_an_unreadable_order_beside_the_injection_is_named_and_the_injection_gets_its_card(server: Server) -> None:
    req = spec_orders_with_an_injection()
    req["context"]["selections"] = ["ServiceRequest/inj-1"]
    card = only_card(server.post(SELECT, req))
    assert "NutritionOrder/pureeddiet-simple" in card["detail"] and "could not be read" in card["detail"]
    assert server.get(f"/api/v1/consultations/{card['uuid']}").json()["status"] == "recommended"
    req["hook"] = "order-sign"
    del req["context"]["selections"]
    assert len(server.post(SIGN, req).json()["cards"]) == 1
    alone = spec_nutrition_and_antibiotic()  # the unreadable order alone, no injection: nothing to say
    del alone["context"]["draftOrders"]["entry"][0]["resource"]["intent"]
    assert server.post(SELECT, alone).json() == {"cards": []}


def test_an_unreadable_injection_order_gets_a_card_saying_so(server: Server) -> None:
    resources = injection(KNEE)
    del resources[0]["intent"]
    card = only_card(server.post(SIGN, hook_request(resources, hook="order-sign")))
    assert card["indicator"] == "warning" and "ServiceRequest/inj-1" in card["detail"] and "intent" in card["detail"]
    assert server.get(f"/api/v1/consultations/{card['uuid']}").json()["status"] == "unreadable"


@pytest.mark.parametrize(
    "draft_orders",
    [{"resourceType": "Patient"}, {"resourceType": "Bundle", "entry": {"resource": {}}}, {"resourceType": "Bundle", "entry": [5]}],
)
def test_only_a_malformed_request_is_a_400(server: Server, draft_orders: dict[str, Any]) -> None:
    req = hook_request(injection(KNEE))
    req["context"]["draftOrders"] = draft_orders
    response = server.post(SELECT, req)
    assert response.status_code == 400 and response.json()["resourceType"] == "OperationOutcome"


# --- 7. nothing from the request becomes markup ------------------------------------------------


def outside_code(markdown: str) -> str:
    """The Markdown with its code spans removed: what a renderer would read as markup."""
    return re.sub(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)", "", markdown)


def assert_inert(text: str) -> None:
    rest = outside_code(text)
    for found in ("](", "<img", "evil.example", "https://"):
        assert found not in rest, (found, rest)


def test_request_text_in_a_recommendation_card_is_inert(server: Server) -> None:
    operation = surgery("24136001", HOSTILE)
    failed = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "timeout", "diagnostics": HOSTILE}]}
    odd = bmi(40.0)
    odd["valueQuantity"].update(unit=HOSTILE, code=HOSTILE)
    odd["id"] = "bmi-1"
    prefetch = {
        "conditions": failed,
        "observations": searchset(odd),
        "procedures": searchset(operation, uncategorised("1234567009", HOSTILE)),
    }
    card = only_card(server.post(SELECT, hook_request(injection([coding(SCT, "24136001")]), prefetch=prefetch)))
    assert "Click to confirm" in card["detail"]  # shown, as text
    assert_inert(card["detail"])
    assert_inert(card["summary"])


def test_request_text_in_an_unreadable_card_is_inert(server: Server) -> None:
    resources = injection([coding(LOCAL_SITE, HOSTILE)], injectate=(HCPCS, HOSTILE))
    resources.append({"resourceType": "Basic", "id": "x", "code": {"text": "x"}, "subject": {"reference": HOSTILE}, "created": HOSTILE})
    card = only_card(server.post(SELECT, hook_request(resources)))
    assert "Click to confirm" in card["detail"]
    assert_inert(card["detail"])
    assert_inert(card["summary"])


def test_a_backtick_in_request_text_cannot_close_its_code_span() -> None:
    from guidance_rules.service.said import Said

    said = Said("code {} unknown", "a`` [x](https://evil.example) `")
    assert_inert(said.markdown)
    assert said.markdown.startswith("code ``` a`` [x](https://evil.example) ` ``` unknown")
    assert_inert(Said("{}", "line\n\n[x](https://evil.example)").markdown)
    assert PATIENT not in Said("{}", "").markdown


# --- 1. the codes EHRs send -------------------------------------------------------------------


def read_one(resources: list[dict[str, Any]], selections: list[str] | None = None) -> Any:
    readings = OrderReader(MAPPING).read({"resourceType": "Bundle", "entry": [{"resource": r} for r in resources]}, selections, record())
    assert len(readings) == 1, readings
    return readings[0]


def test_the_usual_sacroiliac_code_is_read() -> None:
    reading = read_one(injection([coding(SCT, "39723000")], cpt="27096"))
    assert (reading.site, reading.problems, reading.ordered_guidance) == ("sacroiliac", [], Modality.FLUOROSCOPY)
    assert read_one(injection(None, cpt="27096")).site == "sacroiliac"  # the code names the joint


def test_ultrasound_guided_spine_codes_are_read() -> None:
    facet = read_one(injection([coding(SCT, "428001008")], cpt="0216T"))
    assert (facet.site, facet.ordered_guidance, facet.problems) == ("lumbar_facet", Modality.ULTRASOUND, [])
    foraminal = read_one(injection(None, cpt="0230T"))
    assert (foraminal.site, foraminal.ordered_guidance) == ("epidural_transforaminal", Modality.ULTRASOUND)


@pytest.mark.parametrize(
    ("code", "site", "side"),
    [("182204005", "knee", None), ("735264009", "knee", "right"), ("735263003", "knee", "left"), ("362908009", "hip", "right")],
)
def test_entire_and_lateralised_joint_concepts(code: str, site: str, side: str | None) -> None:
    reading = read_one(injection([coding(SCT, code)]))
    assert (reading.site, reading.side, reading.problems) == (site, side, [])


def test_a_lateralised_concept_keeps_surgery_on_the_other_side_away() -> None:
    operation = surgery("735263003", "Left knee replacement")  # Entire left knee joint
    [reading] = OrderReader(MAPPING).read(
        {"resourceType": "Bundle", "entry": [{"resource": r} for r in injection([coding(SCT, "735264009")])]},
        ["ServiceRequest/inj-1"],
        record(procedures=[operation]),
    )
    assert (reading.site, reading.side, reading.case(None)["anatomy_variance"]) == ("knee", "right", [])


@pytest.mark.parametrize(
    ("code", "injectate"),
    [
        ("J1100", Injectate.CORTICOSTEROID),
        ("J7318", Injectate.HYALURONIC_ACID),
        ("J7332", Injectate.HYALURONIC_ACID),
        ("J2001", Injectate.LOCAL_ANESTHETIC),
    ],
)
def test_common_hcpcs_drug_codes(code: str, injectate: Injectate) -> None:
    reading = read_one(injection(KNEE, injectate=(HCPCS, code)))
    assert (reading.injectate, reading.problems) == (injectate, [])


def test_a_medication_order_selected_alone_gets_its_injections_card() -> None:
    reading = read_one(injection(KNEE), selections=["MedicationRequest/med-1"])
    assert (reading.ref, reading.site, reading.injectate) == ("ServiceRequest/inj-1", "knee", Injectate.CORTICOSTEROID)


def test_an_injection_with_a_procedure_code_not_in_the_mapping_says_what_is_missing() -> None:
    """The injectate makes it an injection order: a card names the code it cannot read."""
    reading = read_one(injection(KNEE, cpt="99999"))
    assert reading.procedure is None
    assert any("procedure code is not in rules/fhir-mapping.yaml" in p and "99999" in p for p in reading.problems)


def test_every_mapped_code_names_a_source_with_its_place() -> None:
    spec = MAPPING.spec
    entries = [*spec.body_sites, *spec.procedures, *spec.guidance_addons, *spec.medications, *spec.laterality, *spec.region_codes]
    assert all(e.source in spec.sources and spec.sources[e.source].where for e in entries)


# --- 4. CDS Hooks 2.0 as written ---------------------------------------------------------------


def test_a_delete_action_names_its_resource_by_a_string(server: Server) -> None:
    """2.0 Action.resourceId is a string: a relative reference (an array before)."""
    resources = [*injection(KNEE), service_request_for_guidance("addon-1", "77002")]
    card = only_card(server.post(SELECT, hook_request(resources)))
    assert recommend({"site": "knee", "injectate": "corticosteroid"}).modality is Modality.LANDMARK
    [delete] = [a for a in card["suggestions"][0]["actions"] if a["type"] == "delete"]
    assert delete["resourceId"] == "ServiceRequest/addon-1"


def service_request_for_guidance(rid: str, cpt: str) -> dict[str, Any]:
    from .fhir_examples import service_request

    return service_request(rid, cpt, None, based_on="ServiceRequest/inj-1")


def test_feedback_with_the_ehrs_own_reason_and_a_bad_item_beside_it(server: Server) -> None:
    """An EHR may offer its own override reasons; one bad item never drops the batch."""
    card = only_card(server.post(SELECT, hook_request(injection([coding(SCT, "24136001")]))))
    own = {"system": "https://ehr.example/override-reasons", "code": "d7ecf885", "display": "Discussed with the patient"}
    good = {"card": card["uuid"], "outcome": "overridden", "overrideReason": {"reason": own}, "outcomeTimestamp": "2025-12-11T00:00:00Z"}
    bad = {"card": card["uuid"], "outcome": "maybe", "outcomeTimestamp": "2025-12-11T00:00:00Z"}
    unknown = {**good, "card": "00000000-0000-0000-0000-000000000000"}
    response = server.post(SELECT + "/feedback", {"feedback": [bad, good, unknown]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["stored"], [(r["index"], r["status"]) for r in body["refused"]]) == (1, [(0, 400), (2, 404)])
    [stored] = server.get(f"/api/v1/consultations/{card['uuid']}").json()["feedback"]
    assert (stored["override_code"], stored["override_display"]) == ("https://ehr.example/override-reasons|d7ecf885", own["display"])
    alone = server.post(SELECT + "/feedback", {"feedback": [bad]})
    assert alone.status_code == 400 and alone.json()["resourceType"] == "OperationOutcome"


def test_a_paginated_prefetch_is_not_the_whole_record() -> None:
    """CDS Hooks lets the EHR paginate a prefetch: the pages not sent are unknown, not empty."""
    first_page = searchset()
    first_page["link"] = [{"relation": "next", "url": "https://ehr.example/fhir/Procedure?page=2"}]
    reading = read_knee({**record(), "procedures": first_page})
    assert reading.case(None)["anatomy_variance"] == ["prior_surgery"]
    assert any("only the first page" in n for n in reading.notes)


def test_optional_request_fields_and_extensions_are_accepted(server: Server) -> None:
    req = hook_request(injection(KNEE))
    req["fhirServer"] = "https://ehr.example/fhir"
    req["fhirAuthorization"] = {
        "access_token": "opaque",
        "token_type": "Bearer",
        "expires_in": 300,
        "scope": "user/Patient.read",
        "subject": "cds",
    }
    req["extension"] = {"com.example.flag": {"value": True}}
    req["context"]["extension"] = {"com.example.context": {"a": 1}}
    assert only_card(server.post(SELECT, req))["summary"]


def test_browser_clients_get_cors_headers(server: Server) -> None:
    import httpx

    preflight = httpx.options(
        server.url + SELECT,
        headers={
            "Origin": "https://sandbox.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert preflight.status_code == 200 and preflight.headers.get("access-control-allow-origin") in ("*", "https://sandbox.example")


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_any_request_value_is_one_code_span_that_cannot_close_early(value: str) -> None:
    """Whatever the EHR sends, its value is a single code span: the fence is longer than any run
    of backticks inside, and no line break (which could end the paragraph) survives."""
    from guidance_rules.service.said import code_span

    span = code_span(value)
    if span == "(empty)":
        assert not re.sub(r"[\x00-\x1f\x7f\x85\u2028\u2029]", " ", value).strip()  # nothing visible was sent
        return
    fence = span[: len(span) - len(span.lstrip("`"))]
    assert span.endswith(fence) and len(span) > 2 * len(fence)
    inner = span[len(fence) : -len(fence)]
    assert fence not in inner and "\n" not in span and "\r" not in span
