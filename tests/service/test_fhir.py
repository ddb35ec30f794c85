"""Reading draft orders into Cases (service/fhir.py), without a running server."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from guidance_rules import Recommender
from guidance_rules.model import Injectate, Modality
from guidance_rules.rulebase.load import default_knowledge
from guidance_rules.service.mapping import load_mapping

from .fhir_examples import HCPCS, LOCAL_INJECTATE, SCT, bundle, coding, medication, service_request

pytest.importorskip("fhir.resources", reason="the service extra is not installed (pip install -e '.[service]')")

from guidance_rules.service.fhir import OrderReader

KNEE = [coding(SCT, "49076000")]


def read_mixture(*codes: tuple[str, str]) -> tuple[Injectate | None, list[str], list[str]]:
    """One knee injection with a MedicationRequest per code, each basedOn the order."""
    meds = [medication(f"med-{i}", system, code, "ServiceRequest/inj-1") for i, (system, code) in enumerate(codes)]
    [reading] = OrderReader(load_mapping(default_knowledge())).read(
        bundle(service_request("inj-1", "20610", KNEE), *meds), ["ServiceRequest/inj-1"], None
    )
    return reading.injectate, reading.problems, reading.notes


def test_steroid_with_local_anaesthetic_is_read_as_the_steroid_and_says_so() -> None:
    injectate, problems, notes = read_mixture((HCPCS, "J3301"), (LOCAL_INJECTATE, "local_anesthetic"))
    assert injectate is Injectate.CORTICOSTEROID
    assert problems == []
    assert any("local_anesthetic ordered with it as well" in n for n in notes)


def test_cell_based_in_a_mixture_is_never_read_away() -> None:
    injectate, _, notes = read_mixture((LOCAL_INJECTATE, "local_anesthetic"), (LOCAL_INJECTATE, "cell_based"), (HCPCS, "J3301"))
    assert injectate is Injectate.CELL_BASED
    assert any("corticosteroid, local_anesthetic ordered with it as well" in n for n in notes)


def test_one_injectate_has_no_mixture_note() -> None:
    injectate, problems, notes = read_mixture((HCPCS, "J7325"))
    assert injectate is Injectate.HYALURONIC_ACID
    assert problems == [] and not any("ordered with it" in n for n in notes)


def test_the_mixture_precedence_never_loses_imaging() -> None:
    """Fail safe: at every catalogue site, with every pair of injectates, the injectate a
    mixture is read as gets imaging whenever the other one would."""
    knowledge = default_knowledge()
    combined = load_mapping(knowledge).spec.combined_injectates
    recommender = Recommender(knowledge)
    checked = 0
    for site in knowledge.sites:
        modality = {i: recommender.recommend({"site": site, "injectate": i.value}).modality for i in Injectate}
        for pair in itertools.combinations(Injectate, 2):
            chosen = combined.first(set(pair))
            if modality[chosen] is Modality.LANDMARK:
                assert all(modality[i] is Modality.LANDMARK for i in pair), (site, pair, modality)
            checked += 1
    assert checked == len(knowledge.sites) * 15


def read_order_with(med: dict[str, Any], *more: dict[str, Any]) -> tuple[Injectate | None, list[str]]:
    [reading] = OrderReader(load_mapping(default_knowledge())).read(
        bundle(service_request("inj-1", "20610", KNEE), med, *more), ["ServiceRequest/inj-1"], None
    )
    return reading.injectate, reading.problems


def by_reference(reference: str) -> dict[str, Any]:
    med = medication("med-1", HCPCS, "J7325", "ServiceRequest/inj-1")
    del med["medicationCodeableConcept"]
    med["medicationReference"] = {"reference": reference}
    return med


PRODUCT = {"resourceType": "Medication", "id": "prod-1", "code": {"coding": [coding(HCPCS, "J7325")]}}


def test_medication_contained_in_the_request() -> None:
    med = by_reference("#prod-1")
    med["contained"] = [PRODUCT]
    assert read_order_with(med) == (Injectate.HYALURONIC_ACID, [])


def test_medication_elsewhere_in_the_draft_orders() -> None:
    assert read_order_with(by_reference("Medication/prod-1"), PRODUCT) == (Injectate.HYALURONIC_ACID, [])


def test_medication_reference_that_leads_nowhere_is_named() -> None:
    injectate, problems = read_order_with(by_reference("Medication/absent"))
    assert injectate is None
    assert any("medicationReference 'Medication/absent'" in p for p in problems)


RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"


def test_rxnorm_coded_products() -> None:
    # Kenalog-40 (SBD) drawn up with lidocaine 1% (SCD); Synvisc in its 6 mL syringe (SBD)
    injectate, problems, notes = read_mixture((RXNORM, "1085756"), (RXNORM, "1010033"))
    assert (injectate, problems) == (Injectate.CORTICOSTEROID, [])
    assert any("local_anesthetic ordered with it as well" in n for n in notes)
    assert read_mixture((RXNORM, "1245424"))[:2] == (Injectate.HYALURONIC_ACID, [])


def test_unknown_rxnorm_code_is_named_not_guessed() -> None:
    injectate, problems, _ = read_mixture((RXNORM, "999999999"))
    assert injectate is None
    assert any(f"{RXNORM}|999999999" in p for p in problems)


def test_a_code_that_names_the_injectate_and_leaves_the_guidance_open() -> None:
    """CPT 0232T: platelet-rich plasma, any site, image guidance included but not named."""
    [reading] = OrderReader(load_mapping(default_knowledge())).read(
        bundle(service_request("inj-1", "0232T", KNEE)), ["ServiceRequest/inj-1"], None
    )
    assert (reading.site, reading.injectate, reading.problems) == ("knee", Injectate.PRP, [])
    assert reading.ordered_guidance is None
    assert "injectate prp: named by procedure code 0232T" in reading.notes


def read_coded(cpt: str, snomed: str) -> Any:
    [reading] = OrderReader(load_mapping(default_knowledge())).read(
        bundle(service_request("inj-1", cpt, [coding(SCT, snomed)]), medication("med-1", HCPCS, "J3301", "ServiceRequest/inj-1")),
        ["ServiceRequest/inj-1"],
        None,
    )
    return reading


def test_a_joint_coded_with_another_size_is_noted_and_takes_its_own_family() -> None:
    ac = read_coded("20610", "85856004")  # acromioclavicular joint ordered as a major joint
    assert (ac.site, ac.family, ac.problems) == ("acromioclavicular", "intermediate_joint", [])
    assert any("20610 is for a major joint" in n and "20605, 20606" in n for n in ac.notes)
    right = read_coded("20605", "85856004")
    assert right.family == "intermediate_joint" and not any("CPT descriptors" in n for n in right.notes)


def test_joint_size_is_not_applied_outside_the_arthrocentesis_codes() -> None:
    sheath = read_coded("20550", "49076000")  # a soft-tissue code: another family, left as ordered
    assert sheath.family == "soft_tissue" and not any("CPT descriptors" in n for n in sheath.notes)


RIGHT, LEFT, BOTH_SIDES = coding(SCT, "24028007", "Right"), coding(SCT, "7771000", "Left"), coding(SCT, "51440002", "Right and left")


def read_with_surgery(order_side: dict[str, Any] | None, surgery_side: dict[str, Any] | None, status: str = "completed") -> Any:
    """A knee injection on `order_side`, the record holding a completed knee operation on `surgery_side`."""
    from .fhir_examples import searchset, surgery

    operation = surgery("49076000", "Knee replacement")
    operation["status"] = status
    if surgery_side:
        operation["bodySite"][0]["coding"].append(surgery_side)
    order = service_request("inj-1", "20610", KNEE + ([order_side] if order_side else []))
    prefetch = {"conditions": searchset(), "observations": searchset(), "procedures": searchset(operation)}
    [reading] = OrderReader(load_mapping(default_knowledge())).read(bundle(order), ["ServiceRequest/inj-1"], prefetch)
    return reading


@pytest.mark.parametrize(
    ("order_side", "surgery_side", "side", "prior"),
    [
        (RIGHT, LEFT, "right", False),  # the other knee: not surgery at the injected one
        (LEFT, RIGHT, "left", False),
        (RIGHT, RIGHT, "right", True),
        (LEFT, LEFT, "left", True),
        (RIGHT, None, "right", True),  # an unknown side counts (the conservative reading)
        (None, LEFT, None, True),
        (LEFT, BOTH_SIDES, "left", True),  # both knees include this one
        (BOTH_SIDES, RIGHT, "both", True),
        (None, None, None, True),
    ],
)
def test_prior_surgery_laterality(order_side: Any, surgery_side: Any, side: str | None, prior: bool) -> None:
    """Issue 24: an inverted laterality check was caught only by the HTTP tests; the reader's own."""
    from guidance_rules.model import Variance

    reading = read_with_surgery(order_side, surgery_side)
    assert reading.side == side and reading.site == "knee"
    assert (Variance.PRIOR_SURGERY in reading.variance) is prior
    said = [n for n in reading.notes if "Knee replacement" in n]
    if prior:
        assert said == ["anatomy_variance prior_surgery: completed Knee replacement at the knee"]
    else:
        other = "left" if side == "right" else "right"
        assert said == [f"anatomy_variance: a Knee replacement at the {other} knee is not at the {side} one ordered"]


def test_a_procedure_not_completed_is_no_prior_surgery() -> None:
    from guidance_rules.model import Variance

    for status in ("in-progress", "not-done", "entered-in-error"):
        assert Variance.PRIOR_SURGERY not in read_with_surgery(RIGHT, RIGHT, status).variance


def test_an_order_coded_left_and_right_is_both_sides() -> None:
    order = service_request("inj-1", "20610", [*KNEE, LEFT, RIGHT])
    [reading] = OrderReader(load_mapping(default_knowledge())).read(bundle(order), ["ServiceRequest/inj-1"], None)
    assert reading.side == "both"
