"""The FHIR reader piece by piece, in-process (issue 24): the Bundle and its resources, the order's
site, side, procedure, add-ons and injectate, and the patient's record, each with what it says
when it cannot read something. Mappings come from the shipped rule base, with codes the tests of
service/fhir.py already rely on; a few Addon entries are made here for combinations it lacks."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from guidance_rules.model import Injectate, Modality, Variance
from guidance_rules.rulebase.load import default_knowledge
from guidance_rules.service.errors import BadRequest
from guidance_rules.service.mapping import Addon, load_mapping

from .fhir_examples import CPT, HCPCS, LOCAL_INJECTATE, LOCAL_SITE, PATIENT, SCT, bmi, bundle, coding, condition, medication, searchset
from .fhir_examples import service_request as order
from .fhir_examples import surgery as operation

pytest.importorskip("fhir.resources", reason="the service extra is not installed (pip install -e '.[service]')")

from fhir.resources.R4B.codeableconcept import CodeableConcept
from fhir.resources.R4B.observation import Observation

from guidance_rules.service import fhir
from guidance_rules.service.fhir import OrderReader, OrderReading, Unreadable

MAPPING = load_mapping(default_knowledge())
KNEE, HIP = coding(SCT, "49076000"), coding(SCT, "24136001")
LEFT, RIGHT, BOTH_SIDES = coding(SCT, "7771000"), coding(SCT, "24028007"), coding(SCT, "51440002")
US_ADDON, FL_ADDON = "76942", "77002"
OBESE = MAPPING.conditions[SCT, "414916001"].display
NO_HISTORY = {"conditions": searchset(), "observations": searchset(), "procedures": searchset()}


def read(
    *resources: dict[str, Any], selections: list[str] | None = None, prefetch: dict[str, Any] | None = NO_HISTORY
) -> list[OrderReading]:
    return OrderReader(MAPPING).read(bundle(*resources), selections, prefetch)


def read_one(*resources: dict[str, Any], prefetch: dict[str, Any] | None = NO_HISTORY) -> OrderReading:
    [reading] = read(*resources, prefetch=prefetch)
    return reading


def steroid(based_on: str | None = "ServiceRequest/inj-1", rid: str = "med-1") -> dict[str, Any]:
    return medication(rid, HCPCS, "J3301", based_on)


def addon(rid: str, code: str, based_on: str | None = "ServiceRequest/inj-1") -> dict[str, Any]:
    return order(rid, code, None, based_on)


# --- the Bundle -----------------------------------------------------------------------------------


@pytest.mark.parametrize("sent", [None, [], "Bundle", {"resourceType": "Parameters"}, {"entry": []}])
def test_draft_orders_that_are_no_bundle_are_a_bad_request(sent: Any) -> None:
    with pytest.raises(BadRequest) as error:
        OrderReader(MAPPING).read(sent, None, None)
    assert error.value.message == "context.draftOrders must be a FHIR Bundle (an object with resourceType 'Bundle')"
    assert (error.value.code, error.value.where) == ("structure", "context.draftOrders")


@pytest.mark.parametrize(
    ("sent", "fragment"),
    [
        (
            {"resourceType": "Bundle", "type": 5, "entry": []},
            "context.draftOrders is not a valid FHIR R4 Bundle: type: Input should be a valid ",
        ),
        (
            {"resourceType": "Bundle", "timestamp": "yesterday"},
            "context.draftOrders is not a valid FHIR R4 Bundle: timestamp: Value error, ",
        ),
        ({"resourceType": "Bundle", "type": "collection", "entry": "x"}, "context.draftOrders is not a valid FHIR R4 Bundle: entry"),
    ],
)
def test_a_malformed_bundle_is_a_bad_request(sent: dict[str, Any], fragment: str) -> None:
    with pytest.raises(BadRequest) as error:
        OrderReader(MAPPING).read(sent, None, None)
    assert error.value.message.startswith(fragment) and error.value.message.endswith(" (1 problem(s))")
    assert (error.value.code, error.value.where) == ("structure", "context.draftOrders")


def test_a_bundle_without_type_is_read_as_a_collection() -> None:
    sent = bundle(order("inj-1", "20610", [KNEE]), steroid(), kind=None)
    assert "type" not in sent
    [reading] = OrderReader(MAPPING).read(sent, None, NO_HISTORY)
    assert (reading.site, reading.injectate, reading.problems) == ("knee", Injectate.CORTICOSTEROID, [])
    assert "type" not in sent  # the request is not changed


def test_each_resource_is_validated_alone() -> None:
    too_long = {"resourceType": "ServiceRequest", "id": "x" * 190, "status": "draft"}
    sent = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"fullUrl": "urn:uuid:empty"},  # no resource: nothing to read
            {"resource": 5},
            {"resource": {"resourceType": "NoSuchThing", "id": "n1"}},
            {"resource": {"resourceType": "CodeableConcept", "id": "c1"}},  # a data type, not a resource
            {"resource": {"resourceType": "Not an identifier"}},
            {"resource": {"resourceType": "ServiceRequest", "id": "bad-1", "status": "draft"}},  # intent and subject missing
            {"resource": too_long},
            {"fullUrl": "urn:uuid:ok", "resource": order("inj-1", "20610", [KNEE])},
            {"resource": steroid()},
        ],
    }
    read, unreadable = fhir._entries(sent, "context.draftOrders")
    assert [(url, r.get_resource_type(), r.id) for url, r in read] == [
        ("urn:uuid:ok", "ServiceRequest", "inj-1"),
        (None, "MedicationRequest", "med-1"),
    ]
    assert [u.ref for u in unreadable] == [
        "context.draftOrders.entry.1",
        "NoSuchThing/n1",
        "CodeableConcept/c1",
        "context.draftOrders.entry.4",
        "ServiceRequest/bad-1",
        "context.draftOrders.entry.6",
    ]
    why = [u.why for u in unreadable]
    assert why[0] == "a resource must be a JSON object, not int"
    assert why[1] == 'resourceType "NoSuchThing" is not a FHIR R4 resource type'
    assert why[2] == 'resourceType "CodeableConcept" is not a FHIR R4 resource type'
    assert why[3] == 'resourceType "Not an identifier" is not a FHIR R4 resource type'
    assert why[4].startswith("ServiceRequest.") and why[4].endswith(" problem(s))")
    assert [u.raw for u in unreadable][:2] == [{}, {"resourceType": "NoSuchThing", "id": "n1"}]


def test_a_resource_type_is_a_resource_s_name() -> None:
    assert fhir._resource_type("ServiceRequest") and fhir._resource_type("Bundle")
    for other in ("CodeableConcept", "Coding", "NoSuchThing", "Service Request", "", 5, None):
        assert not fhir._resource_type(other), other


def test_the_codes_and_orders_an_unreadable_resource_names() -> None:
    raw = {
        "code": {"coding": [{"system": CPT, "code": "20610"}, {"code": "x"}, {"system": 5, "code": "y"}, {"system": CPT}, "junk"]},
        "medicationCodeableConcept": {"coding": [{"system": HCPCS, "code": "J3301"}]},
        "basedOn": [{"reference": "ServiceRequest/inj-1"}, {"reference": 5}, "ServiceRequest/x", {"display": "d"}],
    }
    lost = Unreadable("MedicationRequest/m", "why", raw)
    assert lost.codes() == [(CPT, "20610"), ("", "x"), ("", "y"), (HCPCS, "J3301")]
    assert lost.based_on() == {"ServiceRequest/inj-1"}
    for odd in ({}, {"code": "20610", "basedOn": "ServiceRequest/inj-1"}, {"code": {"coding": "x"}}):
        assert Unreadable("X/1", "why", odd).codes() == [] and Unreadable("X/1", "why", odd).based_on() == set()


def test_two_draft_orders_with_one_id_are_a_bad_request() -> None:
    with pytest.raises(BadRequest) as error:
        read(order("inj-1", "20610", [KNEE]), order("inj-1", "20611", [HIP]))
    assert error.value.message == (
        "context.draftOrders holds two resources with the id ServiceRequest/inj-1: a card could not say which it is for"
    )
    broken = {"resourceType": "ServiceRequest", "id": "inj-1", "status": "draft"}
    with pytest.raises(BadRequest, match="two resources with the id ServiceRequest/inj-1"):
        read(broken, order("inj-1", "20610", [KNEE]))
    no_ids = [medication("", HCPCS, "J3301", None), medication("", HCPCS, "J3301", None)]
    for med in no_ids:
        del med["id"]
    assert read(order("inj-1", "20610", [KNEE]), *no_ids)[0].injectate is Injectate.CORTICOSTEROID  # no id: nothing to confuse


# --- which orders are injections -------------------------------------------------------------------


def test_an_order_is_an_injection_by_its_code_or_by_its_injectate() -> None:
    assert read(order("lab-1", "80053", None)) == []  # a metabolic panel: not an injection, no card
    [by_injectate] = read(order("inj-1", "99999", [KNEE]), steroid())
    assert by_injectate.ref == "ServiceRequest/inj-1" and by_injectate.procedure is None
    assert by_injectate.problems == [
        "an injectate is ordered for it, but its procedure code is not in rules/fhir-mapping.yaml (procedures): "
        f"{CPT}|99999. Code the injection with a CPT code listed there"
    ]
    uncoded = order("inj-1", "99999", [KNEE])
    uncoded["code"] = {"text": "joint injection"}
    assert "(procedures): none." in read(uncoded, steroid())[0].problems[0]
    unmapped_drug = medication("med-1", HCPCS, "J9999", "ServiceRequest/inj-1")
    assert read(order("inj-1", "99999", [KNEE]), unmapped_drug) == []  # neither code says injection


def test_selections_choose_the_orders_read() -> None:
    orders = [order("inj-1", "20610", [KNEE]), order("inj-2", "20610", [HIP]), steroid(), steroid("ServiceRequest/inj-2", "med-2")]
    assert [r.ref for r in read(*orders)] == ["ServiceRequest/inj-1", "ServiceRequest/inj-2"]
    assert [r.ref for r in read(*orders, selections=["ServiceRequest/inj-2"])] == ["ServiceRequest/inj-2"]
    assert [r.ref for r in read(*orders, selections=["MedicationRequest/med-2"])] == ["ServiceRequest/inj-2"]
    assert read(*orders, selections=["ServiceRequest/other"]) == []
    assert [r.site for r in read(*orders, selections=[])] == []


def test_an_unreadable_injection_order_gets_its_own_reading() -> None:
    broken = {"resourceType": "ServiceRequest", "id": "inj-1", "status": "draft", "code": {"coding": [coding(CPT, "20610")]}}
    [reading] = read(broken, steroid())
    assert (reading.ref, reading.procedure and reading.procedure.code, reading.resource) == ("ServiceRequest/inj-1", "20610", broken)
    assert len(reading.problems) == 1 and reading.problems[0].startswith("the injection order ServiceRequest/inj-1 could not be read: ")
    assert reading.related == {"MedicationRequest/med-1"}
    assert not any("draft order ServiceRequest/inj-1" in n for n in reading.notes)  # said once, as its problem
    uncoded = {"resourceType": "ServiceRequest", "id": "inj-2", "status": "draft"}
    [medicated] = read(uncoded, steroid("ServiceRequest/inj-2"))
    assert medicated.ref == "ServiceRequest/inj-2" and medicated.procedure is None  # an injection by its injectate
    assert read({"resourceType": "ServiceRequest", "id": "lab-1", "status": "draft"}) == []
    lab = {"resourceType": "ServiceRequest", "id": "lab-1", "status": "draft", "code": {"coding": [coding(CPT, "80053")]}}
    assert read(lab) == []  # coded, and not an injection


def test_an_unreadable_injection_order_says_why_and_keeps_its_medications() -> None:
    broken = {"resourceType": "ServiceRequest", "id": "inj-1", "status": "draft", "code": {"coding": [coding(CPT, "20610")]}}
    why = fhir._validated(broken)
    assert isinstance(why, str)
    unlinked = medication("med-9", HCPCS, "J3301", None)
    [alone] = read(broken, unlinked)  # the only injection order: a medication naming none is its own
    assert alone.problems == [f"the injection order ServiceRequest/inj-1 could not be read: {why}"]
    assert alone.related == {"MedicationRequest/med-9"}
    broken_one, readable = read(order("inj-2", "20610", [KNEE]), broken, steroid(), unlinked)[::-1]
    assert broken_one.ref == "ServiceRequest/inj-1" and readable.ref == "ServiceRequest/inj-2"
    assert broken_one.related == {"MedicationRequest/med-1"}  # by basedOn; the unlinked one is nobody's of two


def test_an_unreadable_medication_order_makes_its_order_an_injection_and_is_named() -> None:
    lost = steroid()
    del lost["intent"]
    [reading] = read(order("inj-1", "99999", [KNEE]), lost)
    assert reading.related == {"MedicationRequest/med-1"} and reading.injectate is None
    assert any(
        p.startswith("the medication order MedicationRequest/med-1 for it could not be read (MedicationRequest.") for p in reading.problems
    )
    assert not any("draft order MedicationRequest/med-1" in n for n in reading.notes)


def test_other_unreadable_draft_orders_are_named_on_each_reading() -> None:
    diet = {"resourceType": "NutritionOrder", "id": "diet-1", "status": "draft"}
    readings = read(order("inj-1", "20610", [KNEE]), steroid(), order("inj-2", "20610", [HIP]), steroid("ServiceRequest/inj-2", "m2"), diet)
    for reading in readings:
        [note] = [n for n in reading.notes if n.startswith("draft order ")]
        assert note.startswith("draft order NutritionOrder/diet-1 could not be read and was not used: NutritionOrder.")


# --- the order's site and side -------------------------------------------------------------------


def test_a_local_site_code_names_a_catalogue_site() -> None:
    reading = read_one(order("inj-1", "20550", [coding(LOCAL_SITE, "biceps_tendon_sheath")]), steroid())
    assert (reading.site, reading.problems) == ("biceps_tendon_sheath", [])
    wrong = read_one(order("inj-1", "20550", [coding(LOCAL_SITE, "elbow-ish")]), steroid())
    assert wrong.site is None
    assert wrong.problems[0] == f"body site elbow-ish is not a catalogue site; valid: {', '.join(sorted(MAPPING.sites))}"
    assert wrong.problems[1].startswith("no body site the mapping can read. Give ServiceRequest.bodySite")


def test_what_the_site_codes_cannot_say_is_named() -> None:
    advice = f". Give ServiceRequest.bodySite as a SNOMED CT body structure from rules/fhir-mapping.yaml or a catalogue key in {LOCAL_SITE}"
    region = read_one(order("inj-1", "20610", [coding(SCT, "72696002"), coding(SCT, "1234")]), steroid())
    note = MAPPING.regions[SCT, "72696002"].note
    assert region.problems == [f"no body site the mapping can read; a region code is not enough: 72696002 ({note})" + advice]
    unknown = read_one(order("inj-1", "20610", [coding(SCT, "1234"), coding("urn:x", "5")]), steroid())
    assert unknown.problems == [f"no body site the mapping can read; codes not in the mapping: {SCT}|1234, urn:x|5" + advice]
    assert read_one(order("inj-1", "20610", [LEFT]), steroid()).problems == ["no body site the mapping can read" + advice]
    assert read_one(order("inj-1", "20610", None), steroid()).problems == ["no body site the mapping can read" + advice]


def test_two_sites_in_one_order_are_a_problem_not_a_choice() -> None:
    reading = read_one(order("inj-1", "20610", [KNEE, HIP]), steroid())
    assert reading.site is None
    assert reading.problems == [f"the order names more than one site: hip from {SCT}|24136001; knee from {SCT}|49076000"]
    epidural = read_one(order("inj-1", "62322", [KNEE]), steroid())
    assert epidural.problems == [
        f"the order names more than one site: epidural_interlaminar from procedure code 62322; knee from {SCT}|49076000"
    ]
    assert read_one(order("inj-1", "62322", [coding(LOCAL_SITE, "epidural_interlaminar")]), steroid()).problems == []


@pytest.mark.parametrize(
    ("codes", "side"),
    [
        ([], None),
        ([KNEE], None),
        ([KNEE, LEFT], "left"),
        ([KNEE, RIGHT], "right"),
        ([KNEE, BOTH_SIDES], "both"),
        ([KNEE, LEFT, RIGHT], "both"),
        ([KNEE, LEFT, LEFT], "left"),
        ([coding(SCT, "735263003")], "left"),  # Entire left knee joint: the concept carries its side
        ([coding(SCT, "735263003"), RIGHT], "both"),
        ([coding(SCT, "735264009"), RIGHT], "right"),
    ],
)
def test_the_side_is_read_from_laterality_and_lateralised_sites(codes: list[dict[str, Any]], side: str | None) -> None:
    concepts = [CodeableConcept.model_validate({"coding": codes})] if codes else None
    assert fhir._side_of(MAPPING, concepts) == side
    split = [CodeableConcept.model_validate({"coding": [c]}) for c in codes]
    assert fhir._side_of(MAPPING, split) == side  # one concept or several: the same


# --- the procedure, its family and the guidance ordered --------------------------------------------


def test_an_order_coded_for_another_joint_size_is_noted() -> None:
    reading = read_one(order("inj-1", "20605", [HIP]), steroid())
    assert (reading.family, reading.procedure and reading.procedure.family) == ("major_joint", "intermediate_joint")
    assert reading.notes[0] == (
        "procedure code 20605 is for a intermediate joint; by the CPT descriptors the hip is a major joint (20610, 20611): "
        "suggestions use those codes"
    )
    assert not any("CPT descriptors" in n for n in read_one(order("inj-1", "20610", [HIP]), steroid()).notes)
    unsized = read_one(order("inj-1", "99999", [HIP]), steroid())
    assert unsized.family == "" and not any("CPT descriptors" in n for n in unsized.notes)


@pytest.mark.parametrize(
    ("code", "addons", "guidance"),
    [
        ("20610", [], Modality.LANDMARK),
        ("20611", [], Modality.ULTRASOUND),
        ("0232T", [], None),  # the code includes whatever guidance is used and names none
        ("20610", [US_ADDON], Modality.ULTRASOUND),
        ("20610", [FL_ADDON], Modality.FLUOROSCOPY),
        ("20610", [US_ADDON, FL_ADDON], Modality.BOTH),
        ("20611", [FL_ADDON], Modality.BOTH),
        ("20611", [US_ADDON], Modality.ULTRASOUND),
        ("0232T", [FL_ADDON], Modality.FLUOROSCOPY),
        ("62323", [], Modality.FLUOROSCOPY),
        ("99999", [US_ADDON], Modality.ULTRASOUND),
        ("99999", [], None),
    ],
)
def test_the_guidance_ordered_is_the_code_s_with_its_add_ons(code: str, addons: list[str], guidance: Modality | None) -> None:
    resources = [order("inj-1", code, [KNEE]), steroid(), *(addon(f"add-{i}", a) for i, a in enumerate(addons))]
    reading = read_one(*resources)
    assert reading.ordered_guidance is guidance
    assert [(ref, entry.code) for ref, entry, _ in reading.addons] == [(f"ServiceRequest/add-{i}", a) for i, a in enumerate(addons)]
    assert reading.related == {"MedicationRequest/med-1", *(f"ServiceRequest/add-{i}" for i in range(len(addons)))}


def test_an_add_on_naming_both_is_both() -> None:
    both = Addon(system=CPT, code="x", display="x", source="cpt-guidance", guidance=Modality.BOTH)
    reading = OrderReading(ref="ServiceRequest/inj-1", resource={}, procedure=None, addons=[("ServiceRequest/a", both, {})])
    assert reading.ordered_guidance is Modality.BOTH
    landmark = Addon(system=CPT, code="y", display="y", source="cpt-guidance", guidance=Modality.LANDMARK)
    assert OrderReading(ref="r", resource={}, procedure=None, addons=[("a", landmark, {})]).ordered_guidance is Modality.LANDMARK


def test_add_ons_and_medications_belong_to_the_order_they_name() -> None:
    """basedOn decides; an order naming none belongs to the only injection order, and to none of several."""
    resources = [
        order("inj-1", "20610", [KNEE]),
        order("inj-2", "20610", [HIP]),
        addon("add-1", US_ADDON, "ServiceRequest/inj-2"),
        addon("add-2", FL_ADDON, None),
        steroid("ServiceRequest/inj-2", "med-2"),
        medication("med-3", HCPCS, "J7325", None),
    ]
    first, second = read(*resources)
    assert (first.ordered_guidance, first.related, first.injectate) == (Modality.LANDMARK, set(), None)
    assert (second.ordered_guidance, second.related) == (Modality.ULTRASOUND, {"ServiceRequest/add-1", "MedicationRequest/med-2"})
    alone = read_one(order("inj-1", "20610", [KNEE]), addon("add-2", FL_ADDON, None), medication("med-3", HCPCS, "J7325", None))
    assert (alone.ordered_guidance, alone.injectate) == (Modality.FLUOROSCOPY, Injectate.HYALURONIC_ACID)
    assert alone.related == {"ServiceRequest/add-2", "MedicationRequest/med-3"}
    others = [
        order("inj-2", "20610", [HIP]),
        addon("add-1", US_ADDON, "urn:uuid:1"),
        steroid("urn:uuid:1"),
        steroid("ServiceRequest/inj-2", "m2"),
    ]
    named = bundle(*others)
    named["entry"].insert(0, {"fullUrl": "urn:uuid:1", "resource": order("inj-1", "20610", [KNEE])})  # named by its fullUrl only
    [reading, _] = OrderReader(MAPPING).read(named, None, NO_HISTORY)
    assert (reading.ordered_guidance, reading.injectate) == (Modality.ULTRASOUND, Injectate.CORTICOSTEROID)


def test_a_case_holds_what_was_read() -> None:
    reading = read_one(order("inj-1", "20610", [KNEE]), steroid())
    reading.variance |= {Variance.PRIOR_SURGERY, Variance.OBESITY}
    assert reading.case(None) == {"site": "knee", "injectate": "corticosteroid", "anatomy_variance": ["obesity", "prior_surgery"]}
    assert reading.case(("ultrasound",))["available_modalities"] == ["ultrasound"]
    assert reading.case(())["available_modalities"] == []
    empty = OrderReading(ref="r", resource={}, procedure=None)
    assert empty.case(None) == {"site": None, "injectate": None, "anatomy_variance": []} and empty.family == ""


# --- the injectate ---------------------------------------------------------------------------------


def test_a_local_injectate_code_is_read_and_an_unknown_one_is_named() -> None:
    local = read_one(order("inj-1", "20610", [KNEE]), medication("med-1", LOCAL_INJECTATE, "prp", "ServiceRequest/inj-1"))
    assert (local.injectate, local.problems) == (Injectate.PRP, [])
    unknown = read_one(order("inj-1", "20610", [KNEE]), medication("med-1", LOCAL_INJECTATE, "stem cells", "ServiceRequest/inj-1"))
    assert unknown.injectate is None
    assert unknown.problems == [
        f"no injectate the mapping can read; medication codes not in the mapping: {LOCAL_INJECTATE}|stem cells. Order the injectate "
        f"as a MedicationRequest (basedOn this ServiceRequest) coded from rules/fhir-mapping.yaml or {LOCAL_INJECTATE} "
        f"({', '.join(i.value for i in Injectate)})"
    ]
    none = read_one(order("inj-1", "20610", [KNEE]))
    assert none.problems == [
        f"no injectate the mapping can read. Order the injectate as a MedicationRequest (basedOn this ServiceRequest) coded from "
        f"rules/fhir-mapping.yaml or {LOCAL_INJECTATE} ({', '.join(i.value for i in Injectate)})"
    ]


def test_a_mixture_says_what_it_was_read_as() -> None:
    reading = read_one(
        order("inj-1", "20610", [KNEE]), steroid(), medication("med-2", LOCAL_INJECTATE, "local_anesthetic", "ServiceRequest/inj-1")
    )
    assert reading.notes == [
        f"injectate corticosteroid ({HCPCS}|J3301): local_anesthetic ordered with it as well; a mixture is read as its first "
        "injectate in rules/fhir-mapping.yaml combined_injectates"
    ]


def test_the_injectate_a_procedure_code_names() -> None:
    named = read_one(order("inj-1", "0232T", [KNEE]))
    assert (named.injectate, named.problems, named.notes) == (Injectate.PRP, [], ["injectate prp: named by procedure code 0232T"])
    also = read_one(order("inj-1", "0232T", [KNEE]), medication("med-1", LOCAL_INJECTATE, "prp", "ServiceRequest/inj-1"))
    assert (also.injectate, also.notes) == (Injectate.PRP, [])  # ordered as well: nothing to add
    mixed = read_one(order("inj-1", "0232T", [KNEE]), steroid())
    assert mixed.injectate is Injectate.PRP
    assert mixed.notes == [
        "injectate prp: named by procedure code 0232T",
        "injectate prp (procedure code 0232T): corticosteroid ordered with it as well; a mixture is read as its first injectate in "
        "rules/fhir-mapping.yaml combined_injectates",
    ]


def by_reference(target: str, **more: Any) -> dict[str, Any]:
    med = steroid()
    del med["medicationCodeableConcept"]
    return {**med, "medicationReference": {"reference": target}, **more}


def test_a_medication_by_reference() -> None:
    product = {"resourceType": "Medication", "id": "p1", "code": {"coding": [coding(HCPCS, "J7325")]}}
    contained = by_reference("#p1", contained=[{**product, "id": "other"}, product])
    assert read_one(order("inj-1", "20610", [KNEE]), contained).injectate is Injectate.HYALURONIC_ACID
    assert read_one(order("inj-1", "20610", [KNEE]), by_reference("Medication/p1"), product).injectate is Injectate.HYALURONIC_ACID
    by_url = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": order("inj-1", "20610", [KNEE])}, {"resource": by_reference("urn:uuid:p")},
        {"fullUrl": "urn:uuid:p", "resource": {**product, "id": None}}]}  # fmt: skip
    del by_url["entry"][2]["resource"]["id"]
    [reading] = OrderReader(MAPPING).read(by_url, None, NO_HISTORY)
    assert reading.injectate is Injectate.HYALURONIC_ACID
    lost = read_one(order("inj-1", "20610", [KNEE]), by_reference("#absent", contained=[product]))
    assert lost.injectate is None
    assert "medicationReference '#absent' (no coded Medication by that reference in the draft orders)" in lost.problems[0]
    uncoded = read_one(order("inj-1", "20610", [KNEE]), by_reference("Medication/p1"), {"resourceType": "Medication", "id": "p1"})
    assert uncoded.injectate is None and "medicationReference 'Medication/p1'" in uncoded.problems[0]


# --- the patient's record --------------------------------------------------------------------------


def knee_with(**record: Any) -> OrderReading:
    prefetch = {**NO_HISTORY, **record}
    return read_one(order("inj-1", "20610", [KNEE]), steroid(), prefetch=prefetch)


ASSUMED = "; what cannot be read is never read as no history (rules/fhir-mapping.yaml variance.unreadable)"


def test_a_prefetch_not_supplied_is_assumed_and_said() -> None:
    reading = read_one(order("inj-1", "20610", [KNEE]), steroid(), prefetch=None)
    assert reading.variance == {Variance.OBESITY, Variance.PRIOR_SURGERY}
    assert reading.notes == [
        "anatomy_variance obesity assumed: prefetch 'conditions' was not supplied, so the patient's conditions are unknown" + ASSUMED,
        "anatomy_variance obesity also: prefetch 'observations' was not supplied, so the patient's observations are unknown" + ASSUMED,
        "anatomy_variance prior_surgery assumed: prefetch 'procedures' was not supplied, so the patient's procedures are unknown" + ASSUMED,
    ]


def test_a_prefetch_the_ehr_could_not_fulfil_is_assumed_with_its_reason() -> None:
    failed = {"resourceType": "OperationOutcome", "issue": [
        {"severity": "error", "code": "timeout", "diagnostics": "took too long"}, {"severity": "error", "code": "too-costly"}, "junk",
        {"code": "a"}, {"code": "b"}]}  # fmt: skip
    reading = knee_with(conditions=failed)
    assert reading.notes == [
        "anatomy_variance obesity assumed: prefetch 'conditions' failed at the EHR: took too long; too-costly" + ASSUMED
    ]
    bare = knee_with(observations={"resourceType": "OperationOutcome"})
    assert bare.notes == ["anatomy_variance obesity assumed: prefetch 'observations' failed at the EHR: no reason given" + ASSUMED]
    wrong = knee_with(procedures={"resourceType": "Patient"})
    assert wrong.notes == [
        "anatomy_variance prior_surgery assumed: prefetch 'procedures' could not be read: prefetch.procedures must be a FHIR Bundle "
        "(an object with resourceType 'Bundle')" + ASSUMED
    ]


def test_a_record_resource_that_does_not_validate_is_assumed_and_named() -> None:
    broken = {**condition("414916001"), "id": "c9"}
    del broken["subject"]
    reading = knee_with(conditions=searchset(broken))
    assert reading.variance == {Variance.OBESITY}
    [note] = reading.notes
    assert note.startswith("anatomy_variance obesity assumed: Condition/c9 in prefetch 'conditions' could not be read: Condition.subject")


def test_a_paginated_prefetch_is_only_its_first_page() -> None:
    page = searchset()
    page["link"] = [{"relation": "self", "url": "https://ehr.example/p1"}, {"relation": "next", "url": "https://ehr.example/p2"}]
    reading = knee_with(observations=page)
    assert reading.notes == [
        "anatomy_variance obesity assumed: prefetch 'observations' holds only the first page of the record (a 'next' link was not followed)"
        + ASSUMED
    ]
    page["link"] = [{"relation": "self", "url": "https://ehr.example/p1"}]
    assert knee_with(observations=page).notes == []


def test_conditions_that_count() -> None:
    assert knee_with(conditions=searchset(condition("414916001"))).notes == [
        f"anatomy_variance obesity: from Condition 414916001 ({OBESE})"
    ]
    for status in ("inactive", "remission", "resolved"):
        assert knee_with(conditions=searchset(condition("414916001", status))).variance == set()
    for verification in ("refuted", "entered-in-error"):
        refuted = condition("414916001")
        refuted["verificationStatus"] = {"coding": [coding("http://terminology.hl7.org/CodeSystem/condition-ver-status", verification)]}
        assert knee_with(conditions=searchset(refuted)).variance == set()
    assert knee_with(conditions=searchset(condition("38341003"))).variance == set()  # hypertension: not a variance
    uncoded = {**condition("414916001"), "id": "c7"}
    del uncoded["code"]
    assert knee_with(conditions=searchset(uncoded)).notes == [
        "anatomy_variance obesity assumed: Condition Condition/c7 has no coded diagnosis to read" + ASSUMED
    ]
    # only the resources of the prefetch's own kind are read
    assert knee_with(conditions=searchset(bmi(40.0))).variance == set()


def test_the_latest_usable_bmi_decides() -> None:
    assert knee_with(observations=searchset(bmi(30.0))).notes == [
        "anatomy_variance obesity: from Observation 39156-5 = 30 kg/m2 (at least 30) on 2025-01-01"
    ]
    assert knee_with(observations=searchset(bmi(29.9))).variance == set()
    assert knee_with(observations=searchset(bmi(35.0, "2024-01-01"), bmi(25.0, "2025-01-01"))).variance == set()
    assert knee_with(observations=searchset(bmi(25.0, "2025-01-01"), bmi(35.0, "2024-01-01"))).variance == set()
    assert knee_with(observations=searchset(bmi(25.0, "2024-01-01"), bmi(35.0, "2025-01-01"))).variance == {Variance.OBESITY}
    spaced = bmi(31.0)
    spaced["valueQuantity"] = {"value": 31.0, "unit": "kg / m2"}
    assert knee_with(observations=searchset(spaced)).variance == {Variance.OBESITY}
    undated = bmi(31.0)
    del undated["effectiveDateTime"]
    assert knee_with(observations=searchset(undated)).notes == [
        "anatomy_variance obesity: from Observation 39156-5 = 31 kg/m2 (at least 30)"
    ]


@pytest.mark.parametrize("order", [(25.0, 35.0), (35.0, 25.0)])
def test_of_two_bmis_at_one_instant_the_higher_decides(order: tuple[float, float]) -> None:
    """Two usable values at the same instant that disagree: the first listed decided, so the order
    of the EHR's search results could hide obesity. The higher one (the variance) is the safe reading."""
    reading = knee_with(observations=searchset(*(bmi(v, "2025-01-01") for v in order)))
    assert reading.variance == {Variance.OBESITY}
    assert reading.notes == ["anatomy_variance obesity: from Observation 39156-5 = 35 kg/m2 (at least 30) on 2025-01-01"]


def test_a_bmi_that_cannot_be_used_is_doubted_unless_a_newer_one_is_usable() -> None:
    grams = {**bmi(31.0, "2025-06-01"), "id": "o1"}
    grams["valueQuantity"] = {"value": 31.0, "unit": "g/cm2"}
    [note] = knee_with(observations=searchset(grams)).notes
    assert note == (
        "anatomy_variance obesity assumed: Observation 39156-5 Observation/o1 cannot be used: status final, value 31 g/cm2 (the mapping "
        "reads kg/m2)" + ASSUMED
    )
    empty = {**bmi(31.0), "status": "preliminary"}
    del empty["valueQuantity"]
    [note] = knee_with(observations=searchset(empty)).notes
    assert "cannot be used: status preliminary, value nan (no unit)" in note and "(no id)" in note
    newer_usable = knee_with(observations=searchset(grams, bmi(22.0, "2025-07-01")))
    assert newer_usable.variance == set()
    assert newer_usable.notes == [
        "Observation 39156-5 Observation/o1 cannot be used: status final, value 31 g/cm2 (the mapping reads kg/m2); "
        "older than the value used"
    ]
    same_day = knee_with(observations=searchset(grams, bmi(22.0, "2025-06-01")))
    assert same_day.variance == {Variance.OBESITY}  # not older than the usable value: doubted


def test_a_voided_bmi_is_skipped_and_said() -> None:
    voided = {**bmi(45.0), "id": "o2", "status": "entered-in-error"}
    cancelled = {**bmi(45.0), "status": "cancelled"}
    reading = knee_with(observations=searchset(voided, cancelled))
    assert reading.variance == set()
    assert reading.notes == [
        "Observation 39156-5 Observation/o2 not used: status entered-in-error",
        "Observation 39156-5 (no id) not used: status cancelled",
    ]


def observed(**effective: Any) -> Observation:
    raw = {**bmi(31.0), **effective}
    if "effectiveDateTime" not in effective:
        del raw["effectiveDateTime"]
    return Observation.model_validate(raw)


def test_when_an_observation_holds() -> None:
    utc = dt.UTC
    assert fhir._observed_at(observed(effectiveDateTime="2025-03-04T05:06:07+01:00"))[0] == dt.datetime(2025, 3, 4, 4, 6, 7, tzinfo=utc)
    assert fhir._observed_at(observed(effectiveDateTime="2025-03-04")) == (dt.datetime(2025, 3, 4, tzinfo=utc), "2025-03-04")
    assert fhir._observed_at(observed(effectiveDateTime="2025-03"))[0] == dt.datetime(2025, 3, 1, tzinfo=utc)
    assert fhir._observed_at(observed(effectiveDateTime="2025"))[0] == dt.datetime(2025, 1, 1, tzinfo=utc)
    assert fhir._observed_at(observed(effectiveInstant="2025-03-04T05:06:07Z"))[0] == dt.datetime(2025, 3, 4, 5, 6, 7, tzinfo=utc)
    period = {"start": "2025-01-01", "end": "2025-02-01"}
    assert fhir._observed_at(observed(effectivePeriod=period))[0] == dt.datetime(2025, 2, 1, tzinfo=utc)
    assert fhir._observed_at(observed(effectivePeriod={"start": "2025-01-01"}))[0] == dt.datetime(2025, 1, 1, tzinfo=utc)
    assert fhir._observed_at(observed(issued="2025-05-06T07:08:09Z"))[0] == dt.datetime(2025, 5, 6, 7, 8, 9, tzinfo=utc)
    assert fhir._observed_at(observed()) == (dt.datetime.min.replace(tzinfo=utc), "")
    leap = "2016-12-31T23:59:60Z"  # kept as given (no datetime holds a leap second): the oldest, still labelled
    assert fhir._observed_at(observed(effectiveDateTime=leap)) == (dt.datetime.min.replace(tzinfo=utc), leap)
    labelled = fhir._observed_at(observed(effectiveDateTime="2025-03-04T05:06:07+01:00"))[1]
    assert labelled == "2025-03-04T05:06:07+01:00"


def test_a_procedure_is_labelled_by_its_text_display_or_code() -> None:
    from fhir.resources.R4B.procedure import Procedure

    def label(code: Any) -> str:
        raw = {"resourceType": "Procedure", "status": "completed", "subject": {"reference": f"Patient/{PATIENT}"}}
        return fhir._label(Procedure.model_validate({**raw, "code": code} if code else raw))

    assert label({"text": "Knee replacement", "coding": [coding(SCT, "1", "Other")]}) == "Knee replacement"
    assert label({"coding": [{"system": SCT}, coding(SCT, "609588000", "Total knee replacement")]}) == "Total knee replacement"
    assert label({"coding": [coding(SCT, "609588000")]}) == "609588000"
    assert label({"coding": [{"system": SCT}]}) == "procedure"
    assert label(None) == "procedure"


def test_prior_surgery_at_the_ordered_site() -> None:
    reading = knee_with(procedures=searchset(operation("49076000", "Knee replacement")))
    assert reading.variance == {Variance.PRIOR_SURGERY}
    assert reading.notes == ["anatomy_variance prior_surgery: completed Knee replacement at the knee"]
    twice = knee_with(procedures=searchset(operation("49076000", "Knee replacement"), operation("49076000", "Revision")))
    assert twice.notes == ["anatomy_variance prior_surgery: completed Knee replacement at the knee"]  # said once
    local = operation("49076000")
    local["bodySite"] = [{"coding": [coding(LOCAL_SITE, "knee")]}]
    assert knee_with(procedures=searchset(local)).variance == {Variance.PRIOR_SURGERY}
    assert knee_with(procedures=searchset(operation("24136001"))).variance == set()  # the hip: elsewhere


def test_a_procedure_the_record_cannot_place_is_doubted_with_each_reason() -> None:
    nowhere = {**operation("49076000", "Arthroscopy"), "id": "p1"}
    del nowhere["bodySite"], nowhere["category"]
    [note] = knee_with(procedures=searchset(nowhere)).notes
    assert note == (
        "anatomy_variance prior_surgery assumed: completed Procedure Procedure/p1 (Arthroscopy): no category says whether it was surgery; "
        "it names no body site" + ASSUMED
    )
    unmapped = operation("1234567009", "Osteotomy")
    unmapped["bodySite"].append({"text": "left knee area"})
    unmapped["bodySite"].append({"coding": [LEFT]})
    [note] = knee_with(procedures=searchset(unmapped)).notes
    assert note == (
        f"anatomy_variance prior_surgery assumed: completed Procedure (no id) (Osteotomy): its body site is not in the mapping: "
        f"{SCT}|1234567009; left knee area" + ASSUMED
    )
    also_here = operation("49076000", "Arthroscopy")
    also_here["bodySite"].append({"coding": [coding(SCT, "1234567009")]})
    assert knee_with(procedures=searchset(also_here)).variance == {Variance.PRIOR_SURGERY}
    untexted = operation("49076000")
    untexted["bodySite"] = [{"coding": [{"system": SCT}]}]
    assert "its body site is not in the mapping: uncoded" in knee_with(procedures=searchset(untexted)).notes[0]


def test_a_procedure_coded_as_not_surgery_or_not_completed_is_no_prior_surgery() -> None:
    imaging = operation("49076000", "MRI")
    imaging["category"] = {"coding": [coding(SCT, "363679005", "Imaging")]}
    assert knee_with(procedures=searchset(imaging)).notes == []
    planned = {**operation("49076000"), "status": "preparation"}
    assert knee_with(procedures=searchset(planned)).variance == set()
    no_site = read_one(order("inj-1", "20610", None), steroid(), prefetch={**NO_HISTORY, "procedures": searchset(operation("49076000"))})
    assert no_site.variance == set()  # no site read: nothing to place the surgery against


def test_a_procedure_s_body_sites_are_read_together() -> None:
    """The site and its side in separate bodySite entries: one place, read as such."""
    split = operation("49076000", "Knee replacement")
    split["bodySite"].append({"coding": [RIGHT]})
    reading = read_one(order("inj-1", "20610", [KNEE, RIGHT]), steroid(), prefetch={**NO_HISTORY, "procedures": searchset(split)})
    assert reading.variance == {Variance.PRIOR_SURGERY}
    assert reading.notes == ["anatomy_variance prior_surgery: completed Knee replacement at the knee"]
    split["bodySite"].append({"coding": [HIP]})
    assert knee_with(procedures=searchset(split)).variance == {Variance.PRIOR_SURGERY}  # the hip as well: still the knee


def test_prior_surgery_on_the_other_side() -> None:
    left_knee = operation("49076000", "Knee replacement")
    left_knee["bodySite"][0]["coding"].append(LEFT)
    right = read_one(order("inj-1", "20610", [KNEE, RIGHT]), steroid(), prefetch={**NO_HISTORY, "procedures": searchset(left_knee)})
    assert right.variance == set()
    assert right.notes == ["anatomy_variance: a Knee replacement at the left knee is not at the right one ordered"]
    hip_left = operation("24136001")
    hip_left["bodySite"][0]["coding"].append(LEFT)
    elsewhere = read_one(order("inj-1", "20610", [KNEE, RIGHT]), steroid(), prefetch={**NO_HISTORY, "procedures": searchset(hip_left)})
    assert elsewhere.notes == []  # another site: not worth a note
    both = operation("49076000", "Knee replacement")
    both["bodySite"][0]["coding"].append(BOTH_SIDES)
    bilateral = read_one(order("inj-1", "20610", [KNEE, RIGHT]), steroid(), prefetch={**NO_HISTORY, "procedures": searchset(both)})
    assert bilateral.variance == {Variance.PRIOR_SURGERY}


def test_general_variance_comes_before_the_doubts_and_skips_last() -> None:
    voided = {**bmi(45.0), "status": "entered-in-error"}
    reading = read_one(
        order("inj-1", "20610", [KNEE]),
        steroid(),
        prefetch={"conditions": searchset(condition("414916001")), "observations": searchset(voided)},
    )
    assert reading.notes == [
        f"anatomy_variance obesity: from Condition 414916001 ({OBESE})",
        "anatomy_variance prior_surgery assumed: prefetch 'procedures' was not supplied, so the patient's procedures are unknown" + ASSUMED,
        "Observation 39156-5 (no id) not used: status entered-in-error",
    ]


# --- what each message lists (issue 24: survivors of the mutation run) ---------------------------------


def test_each_list_in_a_message_is_separated_as_written() -> None:
    two_codes = order("inj-1", "99999", [KNEE])
    two_codes["code"]["coding"].append(coding("urn:x", "7"))
    assert f"(procedures): {CPT}|99999, urn:x|7. Code" in read_one(two_codes, steroid()).problems[0]
    regions = read_one(order("inj-1", "20610", [coding(SCT, "72696002"), coding(SCT, "8205005")]), steroid())
    knee, wrist = MAPPING.regions[SCT, "72696002"].note, MAPPING.regions[SCT, "8205005"].note
    assert f"not enough: 72696002 ({knee}); 8205005 ({wrist}). Give" in regions.problems[0]
    drugs = read_one(order("inj-1", "20610", [KNEE]), medication("m1", HCPCS, "J9998", None), medication("m2", HCPCS, "J9999", None))
    assert f"not in the mapping: {HCPCS}|J9998, {HCPCS}|J9999. Order" in drugs.problems[0]
    operated = operation("1234567009", "Osteotomy")
    operated["bodySite"][0]["coding"].append(coding("urn:x", "8"))
    assert f"not in the mapping: {SCT}|1234567009, urn:x|8" in knee_with(procedures=searchset(operated)).notes[0]


def test_a_local_site_or_injectate_is_named_by_its_code() -> None:
    both = read_one(order("inj-1", "20610", [coding(LOCAL_SITE, "knee"), HIP]), steroid())
    assert both.problems == [f"the order names more than one site: hip from {SCT}|24136001; knee from {LOCAL_SITE}|knee"]
    mixed = read_one(order("inj-1", "20610", [KNEE]), steroid(), medication("m2", LOCAL_INJECTATE, "prp", "ServiceRequest/inj-1"))
    assert mixed.notes[0].startswith(f"injectate prp ({LOCAL_INJECTATE}|prp): corticosteroid ordered with it as well")


def test_a_side_before_the_site_in_one_concept() -> None:
    reading = read_one(order("inj-1", "20610", [RIGHT, KNEE]), steroid())
    assert (reading.site, reading.side, reading.problems) == ("knee", "right", [])


def test_an_add_on_is_kept_as_sent() -> None:
    sent = {**addon("add-1", US_ADDON), "authoredOn": "2025-01-01"}
    reading = read_one(order("inj-1", "20610", [KNEE]), steroid(), sent)
    assert reading.addons[0][2] == sent


def test_unreadable_orders_beside_a_single_injection() -> None:
    diet = {"resourceType": "NutritionOrder", "id": "diet-1", "status": "draft"}
    [reading] = read(order("inj-1", "20610", [KNEE]), steroid(), diet)
    assert reading.related == {"MedicationRequest/med-1"} and not any("diet-1" in p for p in reading.problems)
    assert any(n.startswith("draft order NutritionOrder/diet-1 could not be read") for n in reading.notes)
    lost = medication("med-2", HCPCS, "J3301", None)  # names no order: the only injection order's
    del lost["intent"]
    [reading] = read(order("inj-1", "20610", [KNEE]), steroid(), lost)
    assert reading.related == {"MedicationRequest/med-1", "MedicationRequest/med-2"}
    assert any(p.startswith("the medication order MedicationRequest/med-2 for it could not be read") for p in reading.problems)


def test_a_medication_reference_without_a_target_or_to_an_unmapped_product() -> None:
    plain = read_one(order("inj-1", "20610", [KNEE]), by_reference("x") | {"medicationReference": {"display": "Kenalog"}})
    assert plain.problems[0].startswith("no injectate the mapping can read. Order")
    product = {"resourceType": "Medication", "id": "p1", "code": {"coding": [coding(HCPCS, "J9999")]}}
    unmapped = read_one(order("inj-1", "20610", [KNEE]), by_reference("Medication/p1"), product)
    assert unmapped.problems[0].startswith(f"no injectate the mapping can read; medication codes not in the mapping: {HCPCS}|J9999. Order")


def test_a_medication_of_another_order_listed_first() -> None:
    first, second = read(order("inj-1", "20610", [KNEE]), order("inj-2", "20610", [HIP]), steroid("ServiceRequest/inj-2", "m2"), steroid())
    assert (first.injectate, second.injectate) == (Injectate.CORTICOSTEROID, Injectate.CORTICOSTEROID)


def test_the_joint_size_note_lists_the_codes_the_family_has() -> None:
    import dataclasses

    variants = {**MAPPING.spec.variants, "major_joint": {Modality.LANDMARK: ("20610",)}}
    mapping = dataclasses.replace(MAPPING, spec=MAPPING.spec.model_copy(update={"variants": variants}))
    [reading] = OrderReader(mapping).read(bundle(order("inj-1", "20605", [HIP]), steroid()), None, NO_HISTORY)
    assert "the hip is a major joint (20610): suggestions" in reading.notes[0]


def test_each_record_entry_is_read_on_its_own() -> None:
    """An entry that does not count (inactive, another code) never stops the ones after it."""
    resolved = condition("414916001", "resolved")
    assert knee_with(conditions=searchset(resolved, condition("414916001"))).variance == {Variance.OBESITY}
    heart_rate = {**bmi(80.0), "code": {"coding": [coding("http://loinc.org", "8867-4")]}}
    assert knee_with(observations=searchset(heart_rate, bmi(35.0))).variance == {Variance.OBESITY}
    uncoded = condition("414916001")
    del uncoded["code"]
    assert (
        knee_with(conditions=searchset(uncoded))
        .notes[0]
        .startswith("anatomy_variance obesity assumed: Condition (no id) has no coded diagnosis to read")
    )


def test_each_reason_a_bmi_cannot_be_used() -> None:
    preliminary = {**bmi(22.0), "status": "preliminary"}  # a normal value, not yet final: doubted
    assert knee_with(observations=searchset(preliminary)).variance == {Variance.OBESITY}
    spaced = bmi(25.0)
    spaced["valueQuantity"] = {"value": 25.0, "unit": "kg / m2"}  # the mapping's unit, spaced: usable, and normal
    assert knee_with(observations=searchset(spaced)).variance == set()
    unitless = bmi(31.0)
    unitless["valueQuantity"] = {"value": 31.0}
    assert "cannot be used: status final, value 31 (no unit)" in knee_with(observations=searchset(unitless)).notes[0]


def test_the_order_is_kept_as_sent() -> None:
    sent = {**order("inj-1", "20610", [KNEE]), "authoredOn": "2025-01-01"}
    assert read_one(sent, steroid()).resource == sent


def test_more_shapes_the_reader_names() -> None:
    with pytest.raises(BadRequest) as error:
        OrderReader(MAPPING).read({"resourceType": "Bundle", "type": "collection", "entry": [{"fullUrl": 5}]}, None, None)
    assert (
        error.value.message
        == "context.draftOrders is not a valid FHIR R4 Bundle: entry.0.fullUrl: Input should be a valid string (1 problem(s))"
    )
    edge = {"resourceType": "ServiceRequest", "id": "x" * 186, "status": "draft"}  # 14 + 186 = 200 characters: placed by position
    [lost] = fhir._entries(bundle(edge), "context.draftOrders")[1]
    assert lost.ref == "context.draftOrders.entry.0"
    for extra in (LEFT, RIGHT):
        concepts = [CodeableConcept.model_validate({"coding": [KNEE, BOTH_SIDES, extra]})]
        assert fhir._side_of(MAPPING, concepts) == "both"


def test_what_the_record_says_needs_a_site_and_each_procedure() -> None:
    lonely = read_one(order("inj-1", "20610", [KNEE]))  # a problem of its own (no injectate), not about the other order
    diet = {"resourceType": "NutritionOrder", "id": "diet-1", "status": "draft"}
    [reading] = read(order("inj-1", "20610", [KNEE]), diet)
    assert lonely.problems and any(n.startswith("draft order NutritionOrder/diet-1") for n in reading.notes)
    nowhere = operation("49076000")
    del nowhere["category"], nowhere["bodySite"]  # a procedure the record cannot place: doubted, where there is a site
    no_site = read_one(order("inj-1", "20610", None), steroid(), prefetch={**NO_HISTORY, "procedures": searchset(nowhere)})
    assert no_site.variance == set()  # no site read: no procedure is placed against it, nor doubted
    planned = {**operation("49076000"), "status": "preparation"}
    assert knee_with(procedures=searchset(planned, operation("49076000"))).variance == {Variance.PRIOR_SURGERY}


def test_a_code_without_system_and_a_nested_error_are_named_as_they_are() -> None:
    unsystemed = read_one(order("inj-1", "20610", [{"code": "1234"}]), steroid())
    assert "codes not in the mapping: |1234. Give" in unsystemed.problems[0]
    nested = {**steroid(), "subject": {"reference": 5}}
    assert fhir._validated(nested) == "MedicationRequest.subject.reference: Input should be a valid string (1 problem(s))"


def test_a_resource_the_models_fail_on_with_a_plain_error_is_named() -> None:
    """fhir.resources raises a plain KeyError for an unknown resourceType inside another resource."""
    contained = {**order("inj-1", "20610", [KNEE]), "contained": [{"resourceType": "Nope"}]}
    assert str(fhir._validated(contained)).startswith("ServiceRequest: KeyError: ")
    outcome = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"response": {"status": "200", "outcome": {"resourceType": "Nope"}}}],
    }
    with pytest.raises(BadRequest) as error:
        OrderReader(MAPPING).read(outcome, None, None)
    assert error.value.message.startswith("context.draftOrders is not a valid FHIR R4 Bundle: KeyError: ")
    assert (error.value.code, error.value.where) == ("structure", "context.draftOrders")
