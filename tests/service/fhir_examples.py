"""FHIR R4 resources and CDS Hooks requests for the tests (built here, not copied)."""

from __future__ import annotations

import uuid
from typing import Any

SCT = "http://snomed.info/sct"
CPT = "http://www.ama-assn.org/go/cpt"
HCPCS = "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
LOCAL_SITE = "urn:guidance-rules:site"
LOCAL_INJECTATE = "urn:guidance-rules:injectate"
PATIENT = "1288992"


def coding(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    out = {"system": system, "code": code}
    if display:
        out["display"] = display
    return out


def service_request(rid: str, cpt: str, body_site: list[dict[str, Any]] | None, based_on: str | None = None) -> dict[str, Any]:
    sr: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "id": rid,
        "status": "draft",
        "intent": "order",
        "subject": {"reference": f"Patient/{PATIENT}"},
        "code": {"coding": [coding(CPT, cpt)]},
    }
    if body_site is not None:
        sr["bodySite"] = [{"coding": body_site}]
    if based_on:
        sr["basedOn"] = [{"reference": based_on}]
    return sr


def medication(rid: str, system: str, code: str, based_on: str | None) -> dict[str, Any]:
    mr: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": rid,
        "status": "draft",
        "intent": "order",
        "subject": {"reference": f"Patient/{PATIENT}"},
        "medicationCodeableConcept": {"coding": [coding(system, code)]},
    }
    if based_on:
        mr["basedOn"] = [{"reference": based_on}]
    return mr


def bundle(*resources: dict[str, Any], kind: str | None = "collection") -> dict[str, Any]:
    b: dict[str, Any] = {"resourceType": "Bundle", "entry": [{"resource": r} for r in resources]}
    if kind:
        b["type"] = kind
    return b


def injection(
    site_coding: list[dict[str, Any]] | None, cpt: str = "20610", injectate: tuple[str, str] | None = (HCPCS, "J3301")
) -> list[dict[str, Any]]:
    """An injection order (ServiceRequest/inj-1) and its medication, linked by basedOn."""
    out = [service_request("inj-1", cpt, site_coding)]
    if injectate:
        out.append(medication("med-1", injectate[0], injectate[1], "ServiceRequest/inj-1"))
    return out


NO_HISTORY = "no history"  # the default prefetch: the patient's record read, and empty


def hook_request(
    resources: list[dict[str, Any]],
    hook: str = "order-select",
    selections: list[str] | None = None,
    prefetch: dict[str, Any] | str | None = NO_HISTORY,
) -> dict[str, Any]:
    """A hook call; `prefetch` None sends none (the record is then unknown, read conservatively)."""
    context: dict[str, Any] = {
        "userId": "PractitionerRole/123",
        "patientId": PATIENT,
        "encounterId": "89284",
        "draftOrders": bundle(*resources),
    }
    if hook == "order-select":
        context["selections"] = selections if selections is not None else ["ServiceRequest/inj-1"]
    req: dict[str, Any] = {"hook": hook, "hookInstance": str(uuid.uuid4()), "context": context}
    if prefetch == NO_HISTORY:
        req["prefetch"] = {"conditions": searchset(), "observations": searchset(), "procedures": searchset()}
    elif isinstance(prefetch, dict):
        req["prefetch"] = prefetch
    return req


def searchset(*resources: dict[str, Any]) -> dict[str, Any]:
    return bundle(*resources, kind="searchset")


def bmi(value: float, when: str = "2025-01-01") -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [coding("http://loinc.org", "39156-5", "Body mass index (BMI) [Ratio]")]},
        "subject": {"reference": f"Patient/{PATIENT}"},
        "effectiveDateTime": when,
        "valueQuantity": {"value": value, "unit": "kg/m2", "system": "http://unitsofmeasure.org", "code": "kg/m2"},
    }


def condition(code: str, status: str = "active") -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "clinicalStatus": {"coding": [coding("http://terminology.hl7.org/CodeSystem/condition-clinical", status)]},
        "code": {"coding": [coding(SCT, code)]},
        "subject": {"reference": f"Patient/{PATIENT}"},
    }


def surgery(site_code: str, text: str = "Total hip replacement") -> dict[str, Any]:
    return {
        "resourceType": "Procedure",
        "status": "completed",
        "category": {"coding": [coding(SCT, "387713003", "Surgical procedure")]},
        "code": {"text": text},
        "bodySite": [{"coding": [coding(SCT, site_code)]}],
        "subject": {"reference": f"Patient/{PATIENT}"},
    }


def spec_nutrition_and_antibiotic() -> dict[str, Any]:
    """Shaped like the CDS Hooks specification's order-select example: a pureed-diet
    NutritionOrder and an amoxicillin MedicationRequest, a Bundle without `type`."""
    nutrition = {
        "resourceType": "NutritionOrder",
        "id": "pureeddiet-simple",
        "status": "draft",
        "intent": "order",
        "patient": {"reference": f"Patient/{PATIENT}"},
        "dateTime": "2014-09-17",
        "oralDiet": {"type": [{"coding": [coding(SCT, "226211001", "Pureed diet")], "text": "Pureed diet"}]},
    }
    antibiotic = {
        "resourceType": "MedicationRequest",
        "id": "smart-MedicationRequest-103",
        "status": "draft",
        "intent": "order",
        "medicationCodeableConcept": {"coding": [coding("http://www.nlm.nih.gov/research/umls/rxnorm", "617993")]},
        "subject": {"reference": f"Patient/{PATIENT}"},
    }
    return {
        "hook": "order-select",
        "hookInstance": str(uuid.uuid4()),
        "context": {
            "userId": "PractitionerRole/123",
            "patientId": PATIENT,
            "encounterId": "89284",
            "selections": ["NutritionOrder/pureeddiet-simple", "MedicationRequest/smart-MedicationRequest-103"],
            "draftOrders": {"resourceType": "Bundle", "entry": [{"resource": nutrition}, {"resource": antibiotic}]},
        },
    }
