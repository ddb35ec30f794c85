"""The running service over HTTP: discovery, both hooks, cards, feedback, the JSON API, errors."""

from __future__ import annotations

import json
from typing import Any

import pytest

from guidance_rules import recommend
from guidance_rules.rulebase.load import default_knowledge
from guidance_rules.service.mapping import load_mapping

from .conftest import Server
from .fhir_examples import (
    CPT,
    HCPCS,
    LOCAL_INJECTATE,
    LOCAL_SITE,
    SCT,
    bmi,
    bundle,
    coding,
    condition,
    hook_request,
    injection,
    medication,
    searchset,
    service_request,
    spec_nutrition_and_antibiotic,
    surgery,
)

SELECT = "/cds-services/guidance-rules-order-select"
SIGN = "/cds-services/guidance-rules-order-sign"
KNOWLEDGE = default_knowledge()
MAPPING = load_mapping(KNOWLEDGE)
SNOMED_FOR = {b.site: b.code for b in MAPPING.spec.body_sites}
PROCEDURE_FOR = {
    "lumbar_facet": "64493",
    "lumbar_medial_branch": "64493",
    "epidural_interlaminar": "62322",
    "epidural_transforaminal": "64483",
}


def only_card(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    found = response.json()["cards"]
    assert len(found) == 1, found
    card: dict[str, Any] = found[0]
    return card


def is_outcome(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["diagnostics"]
    assert "Traceback" not in response.text
    return body


def test_discovery_lists_both_hooks_with_prefetch(server: Server) -> None:
    services = {s["id"]: s for s in server.get("/cds-services").json()["services"]}
    assert {s["hook"] for s in services.values()} == {"order-select", "order-sign"}
    for spec in services.values():
        assert set(spec["prefetch"]) == {"conditions", "observations", "procedures"}
        assert "{{context.patientId}}" in spec["prefetch"]["conditions"]


def test_landmark_hip_order_gets_ultrasound_card_with_suggestion(server: Server) -> None:
    req = hook_request(
        injection([coding(SCT, "24136001")]),
        prefetch={"observations": searchset(bmi(34.2)), "conditions": searchset(), "procedures": searchset()},
    )
    card = only_card(server.post(SELECT, req))
    expected = recommend({"site": "hip", "injectate": "corticosteroid", "anatomy_variance": ["obesity"]})
    assert expected.modality.value in card["summary"].lower()
    assert len(card["summary"]) < 140
    assert card["indicator"] == ("info" if expected.modality.value == "landmark" else "warning")
    for step in expected.reasoning:
        assert step.rule in card["detail"]
    assert "anatomy_variance obesity" in card["detail"]  # the BMI observation, shown as a mapped fact
    assert card["source"]["topic"]["code"] == KNOWLEDGE.digest
    assert all(r["display"] and r["code"] and r["system"] for r in card["overrideReasons"])
    suggestion = card["suggestions"][0]
    assert card["selectionBehavior"] == "at-most-one"
    update = next(a for a in suggestion["actions"] if a["type"] == "update")
    assert update["resource"]["id"] == "inj-1"
    assert update["resource"]["code"]["coding"][0]["code"] == MAPPING.spec.variants["major_joint"][expected.modality][0]
    record = server.get(f"/api/v1/consultations/{card['uuid']}").json()
    assert record["case"]["anatomy_variance"] == ["obesity"]
    assert record["modality"] == expected.modality.value
    assert record["rules"] == list(expected.chain_rules())
    assert record["ruleset_digest"] == KNOWLEDGE.digest
    assert record["hook_instance"] == req["hookInstance"]
    assert record["patient_hash"] is None  # no key configured: no patient identifier kept


def test_order_already_matching_gets_info_and_no_suggestion(server: Server) -> None:
    expected = recommend({"site": "knee", "injectate": "corticosteroid"}).modality.value
    cpt = MAPPING.spec.variants["major_joint"][expected][0]
    resources = injection([coding(SCT, "49076000")], cpt=cpt)
    if expected in ("fluoroscopy", "both"):
        resources.append(service_request("addon-1", "77002", None, based_on="ServiceRequest/inj-1"))
    card = only_card(server.post(SIGN, hook_request(resources, hook="order-sign")))
    assert card["indicator"] == "info"
    assert "suggestions" not in card


@pytest.mark.parametrize("site", list(KNOWLEDGE.sites))
def test_every_catalogue_site_from_a_fhir_order(server: Server, site: str) -> None:
    body_site = [coding(SCT, SNOMED_FOR[site])] if site in SNOMED_FOR else [coding(LOCAL_SITE, site)]
    resources = injection(body_site, cpt=PROCEDURE_FOR.get(site, "20610"))
    card = only_card(server.post(SIGN, hook_request(resources, hook="order-sign")))
    expected = recommend({"site": site, "injectate": "corticosteroid"})
    record = server.get(f"/api/v1/consultations/{card['uuid']}").json()
    assert record["status"] == "recommended", record["problems"]
    assert record["site"] == site
    assert record["modality"] == expected.modality.value


def test_knee_region_code_is_not_guessed_to_be_the_joint(server: Server) -> None:
    card = only_card(server.post(SELECT, hook_request(injection([coding(SCT, "72696002")]))))
    assert card["indicator"] == "warning"
    assert "suggestions" not in card
    assert "region" in card["detail"] and "49076000" in card["detail"]
    record = server.get(f"/api/v1/consultations/{card['uuid']}").json()
    assert record["status"] == "unreadable" and record["modality"] is None


@pytest.mark.parametrize(
    ("code", "advice"), [("1264451006", "a1_pulley"), ("81168003", "428001008"), ("1197044005", "biceps_tendon_sheath")]
)
def test_broader_structure_is_not_guessed_to_be_a_catalogue_site(server: Server, code: str, advice: str) -> None:
    card = only_card(server.post(SELECT, hook_request(injection([coding(SCT, code)], cpt="20550"))))
    assert card["indicator"] == "warning" and advice in card["detail"]
    assert server.get(f"/api/v1/consultations/{card['uuid']}").json()["status"] == "unreadable"


def test_suggestion_uses_the_sites_joint_size_not_the_orders(server: Server) -> None:
    card = only_card(server.post(SELECT, hook_request(injection([coding(SCT, "85856004")], cpt="20610"))))
    assert recommend({"site": "acromioclavicular", "injectate": "corticosteroid"}).modality.value == "ultrasound"
    [action] = card["suggestions"][0]["actions"]
    assert action["type"] == "update" and action["resource"]["code"]["coding"][0]["code"] == "20606"  # not 20611
    assert "20610 is for a major joint" in card["detail"]


def test_prp_order_whose_code_leaves_the_guidance_open(server: Server) -> None:
    card = only_card(server.post(SELECT, hook_request(injection([coding(SCT, "24136001")], cpt="0232T", injectate=None))))
    expected = recommend({"site": "hip", "injectate": "prp"})
    assert card["indicator"] == "warning" and "not named by code 0232T" in card["summary"]
    assert card["summary"].startswith(expected.modality.value.capitalize())
    assert "suggestions" not in card  # 0232T includes the guidance: nothing to add or change
    record = server.get(f"/api/v1/consultations/{card['uuid']}").json()
    assert record["case"]["injectate"] == "prp" and record["ordered_guidance"] is None


def test_missing_body_site_and_injectate_are_named(server: Server) -> None:
    card = only_card(server.post(SELECT, hook_request(injection(None, injectate=None))))
    assert "body site" in card["detail"] and "injectate" in card["detail"]
    assert len(card["summary"]) < 140


def test_laterality_does_not_change_the_site(server: Server) -> None:
    plain = only_card(server.post(SELECT, hook_request(injection([coding(SCT, "49076000")]))))
    right = only_card(server.post(SELECT, hook_request(injection([coding(SCT, "49076000"), coding(SCT, "24028007", "Right")]))))
    assert plain["summary"] == right["summary"]
    assert server.get(f"/api/v1/consultations/{right['uuid']}").json()["site"] == "knee"


def test_two_sites_in_one_order_are_a_contradiction(server: Server) -> None:
    card = only_card(server.post(SELECT, hook_request(injection([coding(SCT, "49076000")], cpt="20526"))))
    assert "more than one site" in card["detail"]
    two = only_card(server.post(SELECT, hook_request(injection([coding(SCT, "49076000"), coding(SCT, "24136001")]))))
    # the summary names the problem, not a code system URL cut at its first dot
    assert two["summary"] == "Guidance not assessed: the order names more than one site"


@pytest.mark.parametrize("path", [SELECT, SIGN])
def test_spec_example_without_injections_gets_no_cards(server: Server, path: str) -> None:
    req = spec_nutrition_and_antibiotic()
    if path == SIGN:
        req["hook"] = "order-sign"
        del req["context"]["selections"]
    response = server.post(path, req)
    assert response.status_code == 200, response.text
    assert response.json() == {"cards": []}


def test_order_select_cards_only_for_selected_orders(server: Server) -> None:
    resources = [
        service_request("inj-1", "20610", [coding(SCT, "49076000")]),
        medication("med-1", HCPCS, "J3301", "ServiceRequest/inj-1"),
        service_request("inj-2", "20610", [coding(SCT, "24136001")]),
        medication("med-2", HCPCS, "J7325", "ServiceRequest/inj-2"),
    ]
    card = only_card(server.post(SELECT, hook_request(resources, selections=["ServiceRequest/inj-2"])))
    assert server.get(f"/api/v1/consultations/{card['uuid']}").json()["case"]["injectate"] == "hyaluronic_acid"
    both = server.post(SIGN, hook_request(resources, hook="order-sign")).json()["cards"]
    assert len(both) == 2


def test_patient_record_gives_variance(server: Server) -> None:
    def case_of(prefetch: dict[str, Any]) -> dict[str, Any]:
        card = only_card(server.post(SELECT, hook_request(injection([coding(SCT, "24136001")]), prefetch=prefetch)))
        case: dict[str, Any] = server.get(f"/api/v1/consultations/{card['uuid']}").json()["case"]
        return case

    empty = {"conditions": searchset(), "observations": searchset(), "procedures": searchset()}
    assert case_of(empty)["anatomy_variance"] == []
    assert case_of({**empty, "conditions": searchset(condition("414916001"))})["anatomy_variance"] == ["obesity"]
    assert case_of({**empty, "conditions": searchset(condition("414916001", "resolved"))})["anatomy_variance"] == []
    assert case_of({**empty, "observations": searchset(bmi(27.0))})["anatomy_variance"] == []
    assert case_of({**empty, "observations": searchset(bmi(31.0, "2020-01-01"), bmi(26.0, "2025-06-01"))})["anatomy_variance"] == []
    assert case_of({**empty, "procedures": searchset(surgery("24136001"))})["anatomy_variance"] == ["prior_surgery"]
    assert case_of({**empty, "procedures": searchset(surgery("49076000", "Knee replacement"))})["anatomy_variance"] == []


def test_missing_prefetch_is_never_read_as_no_history(server: Server) -> None:
    """A record not sent is unknown: each part stands for what it could have shown (issue 20.2)."""
    card = only_card(server.post(SELECT, hook_request(injection([coding(SCT, "49076000")]), prefetch=None)))
    assert "prefetch 'conditions' was not supplied" in card["detail"]
    assert "anatomy_variance prior_surgery assumed" in card["detail"]
    record = server.get(f"/api/v1/consultations/{card['uuid']}").json()
    assert record["case"]["anatomy_variance"] == ["obesity", "prior_surgery"]
    assert record["modality"] != "landmark"


def test_local_injectate_code(server: Server) -> None:
    card = only_card(server.post(SELECT, hook_request(injection([coding(SCT, "49076000")], injectate=(LOCAL_INJECTATE, "cell_based")))))
    assert server.get(f"/api/v1/consultations/{card['uuid']}").json()["case"]["injectate"] == "cell_based"


def test_feedback_is_stored_against_the_consultation(server: Server) -> None:
    card = only_card(server.post(SELECT, hook_request(injection([coding(SCT, "24136001")]))))
    accepted = {
        "feedback": [
            {
                "card": card["uuid"],
                "outcome": "accepted",
                "acceptedSuggestions": [{"id": card["suggestions"][0]["uuid"]}],
                "outcomeTimestamp": "2025-12-11T10:05:31Z",
            }
        ]
    }
    assert server.post(SELECT + "/feedback", accepted).status_code == 200
    reason = card["overrideReasons"][1]
    overridden = {
        "feedback": [
            {
                "card": card["uuid"],
                "outcome": "overridden",
                "overrideReason": {"reason": reason, "userComment": "no probe today"},
                "outcomeTimestamp": "2025-12-11T10:06:00Z",
            }
        ]
    }
    assert server.post(SELECT + "/feedback", overridden).status_code == 200
    stored = server.get(f"/api/v1/consultations/{card['uuid']}").json()["feedback"]
    assert [f["outcome"] for f in stored] == ["accepted", "overridden"]
    assert stored[1]["override_code"] == reason["code"] and stored[1]["user_comment"] == "no probe today"
    assert stored[0]["accepted_suggestions"] == [{"id": card["suggestions"][0]["uuid"]}]


def test_feedback_errors(server: Server) -> None:
    unknown = {
        "feedback": [{"card": "00000000-0000-0000-0000-000000000000", "outcome": "accepted", "outcomeTimestamp": "2025-01-01T00:00:00Z"}]
    }
    is_outcome(server.post(SELECT + "/feedback", unknown), 404)
    card = only_card(server.post(SELECT, hook_request(injection([coding(SCT, "24136001")]))))
    bad_reason = {
        "feedback": [
            {
                "card": card["uuid"],
                "outcome": "overridden",
                "outcomeTimestamp": "2025-01-01T00:00:00Z",
                "overrideReason": {"reason": {"system": "urn:guidance-rules:override-reason", "code": "bored"}},
            }
        ]
    }
    is_outcome(server.post(SELECT + "/feedback", bad_reason), 400)
    is_outcome(server.post(SELECT + "/feedback", {"feedback": [{"card": card["uuid"], "outcome": "maybe", "outcomeTimestamp": "x"}]}), 400)
    assert server.get(f"/api/v1/consultations/{card['uuid']}").json()["feedback"] == []


def test_feedback_must_match_the_card(server: Server) -> None:
    """Feedback names what the card offered, at the service that returned it (review findings)."""
    card = only_card(server.post(SELECT, hook_request(injection([coding(SCT, "24136001")]))))
    reason = card["overrideReasons"][0]

    def item(**fields: Any) -> dict[str, Any]:
        return {"feedback": [{"card": card["uuid"], "outcomeTimestamp": "2025-01-01T00:00:00Z", **fields}]}

    def refused(path: str, body: dict[str, Any], fragment: str) -> None:
        assert fragment in is_outcome(server.post(path, body), 400)["issue"][0]["diagnostics"]

    refused(SELECT + "/feedback", item(outcome="overridden", overrideReason={"reason": {"code": reason["code"]}}), "names no system")
    ours_unknown = {"reason": {**reason, "code": "not-offered"}}
    refused(SELECT + "/feedback", item(outcome="overridden", overrideReason=ours_unknown), "not one the card offered")
    refused(SELECT + "/feedback", item(outcome="accepted", overrideReason={"reason": reason}), "no overrideReason")
    refused(SELECT + "/feedback", item(outcome="accepted", acceptedSuggestions=[{"id": "not-a-suggestion"}]), "not the card's suggestion")
    suggested = [{"id": card["suggestions"][0]["uuid"]}]
    refused(SELECT + "/feedback", item(outcome="overridden", acceptedSuggestions=suggested), "no acceptedSuggestions")
    refused(SIGN + "/feedback", item(outcome="accepted"), "not 'guidance-rules-order-sign'")
    unreadable = only_card(server.post(SELECT, hook_request(injection(None))))
    body = {
        "feedback": [
            {
                "card": unreadable["uuid"],
                "outcome": "overridden",
                "overrideReason": {"reason": reason},
                "outcomeTimestamp": "2025-01-01T00:00:00Z",
            }
        ]
    }
    refused(SELECT + "/feedback", body, "offered no override reasons")
    assert server.get(f"/api/v1/consultations/{card['uuid']}").json()["feedback"] == []
    # a retried request is stored once; the same time written with another offset is the same instant
    first = server.post(SELECT + "/feedback", item(outcome="accepted", acceptedSuggestions=suggested)).json()
    retried = item(outcome="accepted", acceptedSuggestions=suggested)
    retried["feedback"][0]["outcomeTimestamp"] = "2025-01-01T01:00:00+01:00"
    again = server.post(SELECT + "/feedback", retried).json()
    assert (first, again) == ({"stored": 1, "already_stored": 0, "refused": []}, {"stored": 0, "already_stored": 1, "refused": []})
    assert len(server.get(f"/api/v1/consultations/{card['uuid']}").json()["feedback"]) == 1


def test_json_api_matches_the_library(server: Server) -> None:
    case = {"site": "hip", "injectate": "cell_based", "anatomy_variance": ["obesity"]}
    response = server.post("/api/v1/recommendations", case)
    assert response.status_code == 200
    assert response.json() == recommend(case).model_dump(mode="json")
    body = is_outcome(server.post("/api/v1/recommendations", {"site": "hip", "injectate": "steroid"}), 400)
    assert body["issue"][0]["expression"] == ["injectate"] and "corticosteroid" in body["issue"][0]["diagnostics"]


def test_bad_requests_get_operation_outcomes(server: Server) -> None:
    import httpx

    is_outcome(httpx.post(server.url + SELECT, content=b"{not json", headers={"content-type": "application/json"}), 400)
    is_outcome(httpx.post(server.url + SELECT, content=b"{}", headers={"content-type": "text/plain"}), 415)
    big = b'{"x": "' + b"a" * 1_100_000 + b'"}'
    is_outcome(httpx.post(server.url + SELECT, content=big, headers={"content-type": "application/json"}), 413)
    is_outcome(server.post("/cds-services/no-such-service", hook_request(injection(None))), 404)
    is_outcome(server.get("/no/such/path"), 404)
    not_bundle = hook_request([])
    not_bundle["context"]["draftOrders"] = {"resourceType": "Patient"}
    is_outcome(server.post(SELECT, not_bundle), 400)
    wrong_hook = hook_request(injection(None), hook="order-sign")
    is_outcome(server.post(SELECT, wrong_hook), 400)
    no_selections = hook_request(injection(None))
    del no_selections["context"]["selections"]
    is_outcome(server.post(SELECT, no_selections), 400)
    no_context = {"hook": "order-select", "hookInstance": "x"}
    is_outcome(server.post(SELECT, no_context), 400)


def test_operations_endpoints(server: Server) -> None:
    assert server.get("/healthz").json()["status"] == "ok"
    ready = server.get("/readyz").json()
    assert ready["status"] == "ready" and ready["ruleset"]["digest"] == KNOWLEDGE.digest
    server.post(SELECT, hook_request(injection([coding(SCT, "24136001")])))
    metrics = server.get("/metrics").text
    assert "guidance_rules_http_requests_total" in metrics and "guidance_rules_cards_total" in metrics
    openapi = server.get("/openapi.json").json()
    assert "/cds-services/{service_id}" in openapi["paths"] and "/cds-services/{service_id}/feedback" in openapi["paths"]
    log_lines = [json.loads(line) for line in server.output().splitlines() if line.startswith("{")]
    assert any(line["event"] == "request" and line["status"] == 200 for line in log_lines)
    assert any("AUTHENTICATION DISABLED" in line["event"] for line in log_lines)


def test_mapping_cpt_codes_are_one_system() -> None:
    """Suggestions look a code up by its code alone: every code they can write (variants, levels)
    is CPT, and no procedure code is listed under two systems (G0260 is HCPCS and is never suggested)."""
    suggested = {c for row in MAPPING.spec.variants.values() for codes in row.values() for c in codes}
    suggested |= {c for row in MAPPING.spec.level_variants.values() for c in row.values()}
    assert {MAPPING.procedure_by_code(c).system for c in suggested} == {CPT}
    entries = [*MAPPING.spec.procedures, *MAPPING.spec.guidance_addons, *MAPPING.spec.level_addons]
    assert len({e.code for e in entries}) == len(entries)


def test_unlinked_orders_are_not_given_to_the_selected_one_of_several(server: Server) -> None:
    """A medication or guidance order with no basedOn belongs to the one injection order of the
    draft orders; with two, selecting one does not make it that one's (review finding)."""
    resources = [
        service_request("inj-1", "20610", [coding(SCT, "49076000")]),
        service_request("inj-2", "20610", [coding(SCT, "24136001")]),
        medication("med-1", LOCAL_INJECTATE, "cell_based", None),
        service_request("guide-1", "77002", None),
    ]
    card = only_card(server.post(SELECT, hook_request(resources, selections=["ServiceRequest/inj-1"])))
    assert "no injectate the mapping can read" in card["detail"] and "suggestions" not in card
    alone = [resources[0], resources[2], resources[3]]
    card = only_card(server.post(SELECT, hook_request(alone, selections=["ServiceRequest/inj-1"])))
    record = server.get(f"/api/v1/consultations/{card['uuid']}").json()
    assert record["case"]["injectate"] == "cell_based" and record["ordered_guidance"] == "fluoroscopy"


def test_based_on_may_name_the_order_by_its_full_url(server: Server) -> None:
    req = hook_request(injection([coding(SCT, "49076000")], injectate=None))
    extra = medication("med-9", LOCAL_INJECTATE, "prp", "urn:uuid:0b4c6f3e-4d7a-4a8e-9d21-2f5c1c1b7a10")
    req["context"]["draftOrders"]["entry"][0]["fullUrl"] = "urn:uuid:0b4c6f3e-4d7a-4a8e-9d21-2f5c1c1b7a10"
    req["context"]["draftOrders"]["entry"].append({"resource": extra})
    req["context"]["draftOrders"]["entry"].append({"resource": service_request("inj-2", "20610", [coding(SCT, "24136001")])})
    card = only_card(server.post(SELECT, req))
    assert server.get(f"/api/v1/consultations/{card['uuid']}").json()["case"]["injectate"] == "prp"


def test_two_resources_with_one_id_are_refused(server: Server) -> None:
    resources = [service_request("inj-1", "20610", [coding(SCT, "49076000")]), service_request("inj-1", "20610", [coding(SCT, "24136001")])]
    body = is_outcome(server.post(SIGN, hook_request(resources, hook="order-sign")), 400)
    assert "two resources with the id ServiceRequest/inj-1" in body["issue"][0]["diagnostics"]


@pytest.mark.parametrize("kind", ["Nope", 5, None, "String", "BundleEntry"])
def test_an_unknown_resource_type_is_named_on_the_card_not_a_server_error(server: Server, kind: Any) -> None:
    """Resource by resource (issue 20.3): a resource that is not FHIR is named, the order beside it
    still gets its card; in the order's own medication it leaves the injectate unknown; in the
    patient's record it is never read as no history."""
    req = hook_request(injection([coding(SCT, "49076000")]))
    req["context"]["draftOrders"]["entry"].append({"resource": {"resourceType": kind}})
    card = only_card(server.post(SELECT, req))
    assert "could not be read and was not used" in card["detail"] and "resourceType" in card["detail"]
    assert server.get(f"/api/v1/consultations/{card['uuid']}").json()["status"] == "recommended"
    contained = hook_request(injection([coding(SCT, "49076000")]))
    contained["context"]["draftOrders"]["entry"][1]["resource"]["contained"] = [{"resourceType": "Nope", "id": "x"}]
    card = only_card(server.post(SELECT, contained))
    assert "MedicationRequest/med-1" in card["detail"] and "its injectate is unknown" in card["detail"]
    empty = {"observations": searchset(), "procedures": searchset()}
    prefetch = hook_request(injection([coding(SCT, "49076000")]), prefetch={**empty, "conditions": bundle({"resourceType": "Nope"})})
    card = only_card(server.post(SELECT, prefetch))
    assert "in prefetch 'conditions' could not be read" in card["detail"]
    assert server.get(f"/api/v1/consultations/{card['uuid']}").json()["case"]["anatomy_variance"] == ["obesity"]


def test_hostile_bodies_are_400s(server: Server) -> None:
    import httpx

    deep = b"[" * 100_000 + b"]" * 100_000
    for path in (SELECT, "/api/v1/recommendations"):
        body = is_outcome(httpx.post(server.url + path, content=deep, headers={"content-type": "application/json"}), 400)
        assert "nested too deeply" in body["issue"][0]["diagnostics"]
    lone = json.dumps(hook_request(injection([coding(SCT, "49076000")]))).replace('"1288992"', '"\\udc00"')
    body = is_outcome(httpx.post(server.url + SELECT, content=lone.encode(), headers={"content-type": "application/json"}), 400)
    assert "surrogate" in body["issue"][0]["diagnostics"]
    pair = json.dumps(hook_request(injection([coding(SCT, "49076000")]))).replace('"1288992"', '"\\ud83d\\ude00"')
    assert httpx.post(server.url + SELECT, content=pair.encode(), headers={"content-type": "application/json"}).status_code == 200


def test_a_prefetch_the_ehr_could_not_fulfil_is_said_not_refused(server: Server) -> None:
    issue = {"severity": "error", "code": "timeout", "diagnostics": "FHIR server timed out"}
    failed = {"resourceType": "OperationOutcome", "issue": [issue]}
    prefetch = {"conditions": failed, "observations": searchset(bmi(33.0)), "procedures": searchset()}
    card = only_card(server.post(SELECT, hook_request(injection([coding(SCT, "24136001")]), prefetch=prefetch)))
    assert "prefetch 'conditions' failed at the EHR: `FHIR server timed out`" in card["detail"]
    assert server.get(f"/api/v1/consultations/{card['uuid']}").json()["case"]["anatomy_variance"] == ["obesity"]


def test_the_latest_bmi_is_the_latest_instant_and_odd_values_are_named(server: Server) -> None:
    def read(*observations: dict[str, Any]) -> tuple[list[str], str]:
        prefetch = {"conditions": searchset(), "observations": searchset(*observations), "procedures": searchset()}
        card = only_card(server.post(SELECT, hook_request(injection([coding(SCT, "24136001")]), prefetch=prefetch)))
        variance: list[str] = server.get(f"/api/v1/consultations/{card['uuid']}").json()["case"]["anatomy_variance"]
        return variance, card["detail"]

    # 23:30 at -05:00 is 04:30Z on the 2nd: later than 01:00Z (a string comparison says otherwise)
    assert read(bmi(32.0, "2025-01-01T23:30:00-05:00"), bmi(25.0, "2025-01-02T01:00:00Z"))[0] == ["obesity"]
    assert read(bmi(32.0, "2024"), bmi(25.0, "2024-06"))[0] == []  # a year or month: its first day
    infinite = bmi(40.0)
    infinite["valueQuantity"]["value"] = "1e400"
    variance, detail = read(infinite)  # a value that cannot be compared is doubted, never normal (issue 20.2)
    assert variance == ["obesity"] and "cannot be used" in detail
    other_unit = bmi(35.0)
    other_unit["valueQuantity"].update(unit="kg/m^2", code="kg/m^2")
    variance, detail = read(other_unit)
    assert variance == ["obesity"] and "the mapping reads kg/m2" in detail
    variance, detail = read(other_unit, bmi(24.0, "2025-06-01"))  # an older unusable value: the newer usable one decides
    assert variance == [] and "older than the value used" in detail


def test_prior_surgery_on_the_other_side_is_not_at_the_injected_site(server: Server) -> None:
    """Laterality never changes the site, but a left knee operation is not surgery at the right knee;
    an unknown side on either counts (the conservative reading)."""
    right, left = coding(SCT, "24028007", "Right"), coding(SCT, "7771000", "Left")

    def variance(order_side: dict[str, Any] | None, surgery_side: dict[str, Any] | None) -> tuple[list[str], str]:
        site = [coding(SCT, "49076000")] + ([order_side] if order_side else [])
        operation = surgery("49076000", "Knee replacement")
        if surgery_side:
            operation["bodySite"][0]["coding"].append(surgery_side)
        prefetch = {"conditions": searchset(), "observations": searchset(), "procedures": searchset(operation)}
        card = only_card(server.post(SELECT, hook_request(injection(site), prefetch=prefetch)))
        found: list[str] = server.get(f"/api/v1/consultations/{card['uuid']}").json()["case"]["anatomy_variance"]
        return found, card["detail"]

    found, detail = variance(right, left)
    assert found == [] and "at the left knee is not at the right one ordered" in detail
    assert variance(right, right)[0] == ["prior_surgery"]
    assert variance(right, None)[0] == ["prior_surgery"]
    assert variance(None, left)[0] == ["prior_surgery"]
    assert variance(left, coding(SCT, "51440002", "Right and left"))[0] == ["prior_surgery"]
