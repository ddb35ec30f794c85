"""The codes EHRs send (issue 20, point 1): each code added to rules/fhir-mapping.yaml is read as
its source says, each code deliberately left out still gets an injection order its card, and a
lateralised concept keeps its side for the prior-surgery check."""

from __future__ import annotations

from typing import Any

import pytest

from guidance_rules import recommend
from guidance_rules.model import Injectate, Modality
from guidance_rules.rulebase.load import default_knowledge
from guidance_rules.service.mapping import load_mapping

from .conftest import Server
from .fhir_examples import CPT, HCPCS, SCT, coding, hook_request, injection, searchset, service_request, surgery

pytest.importorskip("fhir.resources", reason="the service extra is not installed (pip install -e '.[service]')")

from guidance_rules.service.fhir import OrderReader

SELECT = "/cds-services/guidance-rules-order-select"
MAPPING = load_mapping(default_knowledge())
KNEE = [coding(SCT, "49076000")]
SI_JOINT = [coding(SCT, "39723000")]
EMPTY_RECORD = {"conditions": searchset(), "observations": searchset(), "procedures": searchset()}


def read(resources: list[dict[str, Any]], selections: list[str] | None = None, record: dict[str, Any] | None = None) -> Any:
    readings = OrderReader(MAPPING).read(
        {"resourceType": "Bundle", "entry": [{"resource": r} for r in resources]}, selections, record or EMPTY_RECORD
    )
    assert len(readings) == 1, readings
    return readings[0]


def level(rid: str, code: str, based_on: str = "ServiceRequest/inj-1") -> dict[str, Any]:
    return service_request(rid, code, None, based_on=based_on)


# --- medication codes ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "injectate"),
    [
        ("J2920", Injectate.CORTICOSTEROID),
        ("J2930", Injectate.CORTICOSTEROID),
        ("J1700", Injectate.CORTICOSTEROID),
        ("J1720", Injectate.CORTICOSTEROID),
        ("J2795", Injectate.LOCAL_ANESTHETIC),
    ],
)
def test_added_hcpcs_drug_codes(code: str, injectate: Injectate) -> None:
    reading = read(injection(KNEE, injectate=(HCPCS, code)))
    assert (reading.site, reading.injectate, reading.problems) == ("knee", injectate, [])


# --- procedure and guidance codes -----------------------------------------------------------------


def test_g0260_is_a_sacroiliac_injection_that_names_no_guidance() -> None:
    """The facility code names the joint and no imaging: no guidance is read from it, and an
    add-on 77003 (spinal fluoroscopic guidance) beside it is read as fluoroscopy."""
    order = injection(SI_JOINT)
    order[0]["code"] = {"coding": [coding(HCPCS, "G0260")]}
    alone = read(order)
    assert (alone.site, alone.injectate, alone.ordered_guidance, alone.problems) == ("sacroiliac", Injectate.CORTICOSTEROID, None, [])
    guided = read([*order, level("fluoro-1", "77003")])
    assert (guided.ordered_guidance, guided.related >= {"ServiceRequest/fluoro-1"}) == (Modality.FLUOROSCOPY, True)
    no_site = [dict(order[0]), order[1]]
    del no_site[0]["bodySite"]
    assert read(no_site).site == "sacroiliac"  # the code names the joint


def test_the_card_for_g0260_names_the_modality_and_suggests_no_other_code(server: Server) -> None:
    order = injection(SI_JOINT)
    order[0]["code"] = {"coding": [coding(HCPCS, "G0260")]}
    response = server.post(SELECT, hook_request(order))
    assert response.status_code == 200, response.text
    [card] = response.json()["cards"]
    expected = recommend({"site": "sacroiliac", "injectate": "corticosteroid"}).modality
    assert card["summary"].startswith(expected.value.capitalize()) and card["indicator"] == "warning"
    assert "suggestions" not in card  # G0260 has no guided variant to swap it for


# --- additional levels ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "levels", "site"),
    [
        ("64483", ["64484"], "epidural_transforaminal"),
        ("0230T", ["0231T"], "epidural_transforaminal"),
        ("64493", ["64494", "64495"], "lumbar_facet"),
        ("0216T", ["0217T", "0218T"], "lumbar_facet"),
    ],
)
def test_additional_levels_are_read_with_their_first_level(first: str, levels: list[str], site: str) -> None:
    body = [coding(SCT, "428001008")] if site == "lumbar_facet" else None
    extra = [level(f"lvl-{i}", code) for i, code in enumerate(levels)]
    reading = read([*injection(body, cpt=first), *extra])
    expected_guidance = MAPPING.procedures[(CPT, first)].guidance
    assert (reading.site, reading.injectate, reading.ordered_guidance, reading.problems) == (
        site,
        Injectate.CORTICOSTEROID,
        expected_guidance,
        [],
    )
    assert [entry.code for _, entry, _ in reading.levels] == levels
    assert all(MAPPING.level_guidance(entry) is expected_guidance for _, entry, _ in reading.levels)
    assert sum("additional level ordered with it" in n for n in reading.notes) == len(levels)
    # selecting only the level order finds the injection it belongs to
    assert read([*injection(body, cpt=first), *extra], selections=["ServiceRequest/lvl-0"]).ref == "ServiceRequest/inj-1"


@pytest.mark.parametrize(("first", "other"), [("64483", "0231T"), ("0230T", "64484"), ("64493", "64484"), ("0216T", "64494")])
def test_a_level_code_for_another_procedure_or_guidance_is_a_contradiction(first: str, other: str) -> None:
    body = [coding(SCT, "428001008")] if MAPPING.procedures[(CPT, first)].family == "facet" else None
    reading = read([*injection(body, cpt=first), level("lvl-0", other)])
    assert any("additional-level order" in p and f"not to {first}" in p for p in reading.problems), reading.problems


def test_a_level_ordered_without_its_first_level_says_so() -> None:
    """An injectate ordered for a level code alone: the card asks for the first level, not for a
    code the mapping already lists."""
    reading = read(injection(None, cpt="64484"))
    assert reading.levels == [] and reading.problems[0] == (
        "its code 64484 orders an additional level; order the first level (64483) with it, the additional level basedOn that order"
    )
    assert not any("not in rules/fhir-mapping.yaml (procedures)" in p for p in reading.problems)


def test_a_suggestion_changes_the_levels_with_the_first_level_code(server: Server) -> None:
    """Ordered with the guidance the rules do not recommend, the card turns the first level and
    every additional level into the recommended guidance's codes."""
    rec = recommend({"site": "lumbar_facet", "injectate": "corticosteroid"}).modality
    rows = {"second": MAPPING.spec.level_variants["facet_second"], "third": MAPPING.spec.level_variants["facet_third"]}
    firsts = {Modality.FLUOROSCOPY: "64493", Modality.ULTRASOUND: "0216T"}
    assert rec in firsts, rec  # both codings exist only for these two
    ordered = next(m for m in firsts if m is not rec)
    resources = [
        *injection([coding(SCT, "428001008")], cpt=firsts[ordered]),
        level("lvl-2", rows["second"][ordered]),
        level("lvl-3", rows["third"][ordered]),
    ]
    response = server.post(SELECT, hook_request(resources))
    assert response.status_code == 200, response.text
    [card] = response.json()["cards"]
    [suggestion] = card["suggestions"]
    updates = {a["resource"]["id"]: a["resource"]["code"]["coding"][0]["code"] for a in suggestion["actions"] if a["type"] == "update"}
    assert updates == {"inj-1": firsts[rec], "lvl-2": rows["second"][rec], "lvl-3": rows["third"][rec]}


# --- lateralised concepts keep their side ---------------------------------------------------------

LATERALISED = [(b.code, b.site, b.side) for b in MAPPING.spec.body_sites if b.side]


@pytest.mark.parametrize(("code", "site", "side"), LATERALISED)
def test_every_lateralised_concept_gives_its_site_and_side(code: str, site: str, side: str) -> None:
    reading = read(injection([coding(SCT, code)]))
    assert (reading.site, reading.side, reading.problems) == (site, side, [])


@pytest.mark.parametrize(("code", "site", "side"), LATERALISED)
def test_surgery_on_the_other_side_is_not_prior_surgery_and_on_the_same_side_is(code: str, site: str, side: str) -> None:
    """For every lateralised concept: a surgery at the same site coded with the opposite concept
    (or the structure with the opposite laterality qualifier) is not at the injected site; the
    same side is."""
    opposite = {"left": "right", "right": "left"}[side]
    twins = [b.code for b in MAPPING.spec.body_sites if b.site == site and b.side == opposite]
    qualifier = next(q.code for q in MAPPING.spec.laterality if q.side == opposite)
    structure = next(b.code for b in MAPPING.spec.body_sites if b.site == site and b.side is None)
    other_side = surgery(structure)
    other_side["bodySite"][0]["coding"].append(coding(SCT, qualifier))
    for operation in [*(surgery(t) for t in twins), other_side]:
        record = {**EMPTY_RECORD, "procedures": searchset(operation)}
        assert read(injection([coding(SCT, code)]), record=record).case(None)["anatomy_variance"] == [], operation
    same = {**EMPTY_RECORD, "procedures": searchset(surgery(code))}
    assert read(injection([coding(SCT, code)]), record=same).case(None)["anatomy_variance"] == ["prior_surgery"]


# --- codes left out on purpose ----------------------------------------------------------------------


@pytest.mark.parametrize("left", [u for u in MAPPING.spec.unverified_codes if u.kind != "guidance"], ids=lambda u: u.code)
def test_a_code_left_out_still_gets_the_injection_its_card_saying_what_is_missing(left: Any) -> None:
    """An injection order carrying a code the mapping leaves out (a procedure, its medication or
    its body site) is never read as something else: the reading names the code as not mapped,
    says why, and is not a recommendation (the card is the unreadable one)."""
    named = f"{left.system}|{left.code}"
    if left.kind == "procedure":
        resources = injection(KNEE)
        resources[0]["code"] = {"coding": [coding(left.system, left.code)]}
    elif left.kind == "medication":
        resources = injection(KNEE, injectate=(left.system, left.code))
    else:
        resources = injection([coding(left.system, left.code)])
    reading = read(resources)
    assert reading.problems and any(named in p for p in reading.problems), reading.problems
    assert any(named in n and "not in the mapping on purpose" in n for n in reading.notes), reading.notes
    assert (left.system, left.code) not in {**MAPPING.procedures, **MAPPING.medications, **MAPPING.body_sites, **MAPPING.levels}


# --- imaging this tool does not rate --------------------------------------------------------------

UNRATED = [u for u in MAPPING.spec.unverified_codes if u.kind == "guidance"]


def test_ct_and_mr_guidance_are_listed_as_imaging_not_rated() -> None:
    assert {u.code for u in UNRATED} >= {"77012", "77021"}


@pytest.mark.parametrize("left", UNRATED, ids=lambda u: u.code)
@pytest.mark.parametrize("based_on", ["ServiceRequest/inj-1", None])
def test_an_injection_ordered_with_unrated_guidance_has_its_guidance_not_known(left: Any, based_on: str | None) -> None:
    """An injection ordered with CT guidance (20610 with 77012) was read as ordered without
    imaging ("ordered: landmark") because the add-on was skipped in silence. Its guidance is not
    known: the reading names the add-on, says why it is not read, and still recommends."""
    guided = service_request("ct-1", left.code, None, based_on=based_on)
    reading = read([*injection(KNEE), guided])
    assert reading.ordered_guidance is None
    assert reading.unread == ["ServiceRequest/ct-1"]
    assert reading.problems == []
    assert reading.notes == [
        f"the order ServiceRequest/ct-1 ({left.system}|{left.code}) is placed with it but not read: its code is not a guidance "
        "or level add-on in rules/fhir-mapping.yaml, so the guidance ordered is not known",
        f"{left.system}|{left.code} is not in the mapping on purpose: {left.why}",
    ]


def test_an_unknown_order_based_on_the_injection_makes_its_guidance_not_known() -> None:
    """An order naming the injection by basedOn may order its guidance with a code not mapped: the
    guidance is not known. One that names no injection and is no guidance code is another matter."""
    lab = service_request("lab-1", "85025", None, based_on="ServiceRequest/inj-1")
    lab["code"]["coding"].append(coding("http://loinc.org", "58410-2"))
    with_lab = read([*injection(KNEE), lab])
    assert (with_lab.ordered_guidance, with_lab.unread) == (None, ["ServiceRequest/lab-1"])
    assert with_lab.notes[0].startswith(f"the order ServiceRequest/lab-1 ({CPT}|85025, http://loinc.org|58410-2) is placed with it")
    uncoded = service_request("x-1", "85025", None, based_on="ServiceRequest/inj-1")
    del uncoded["code"]
    assert read([*injection(KNEE), uncoded]).notes[0].startswith("the order ServiceRequest/x-1 (none) is placed with it but not read")
    apart = service_request("lab-1", "85025", None, based_on=None)
    reading = read([*injection(KNEE), apart])
    assert (reading.ordered_guidance, reading.unread, reading.notes) == (Modality.LANDMARK, [], [])


def test_another_injection_based_on_this_one_is_not_an_unread_order() -> None:
    second = service_request("inj-2", "20611", [coding(SCT, "24136001")], based_on="ServiceRequest/inj-1")
    readings = OrderReader(MAPPING).read(
        {"resourceType": "Bundle", "entry": [{"resource": r} for r in [*injection(KNEE), second]]}, None, EMPTY_RECORD
    )
    assert [(r.ref, r.ordered_guidance, r.unread) for r in readings] == [
        ("ServiceRequest/inj-1", Modality.LANDMARK, []),
        ("ServiceRequest/inj-2", Modality.ULTRASOUND, []),
    ]


def test_the_card_for_an_injection_with_ct_guidance_names_it_and_suggests_nothing(server: Server) -> None:
    """Rewriting the injection's code to the recommended variant would leave the CT order beside it:
    no suggestion, and the card says the guidance ordered is not known (not "landmark")."""
    ct = service_request("ct-1", "77012", None, based_on="ServiceRequest/inj-1")
    response = server.post(SELECT, hook_request([*injection(KNEE), ct]))
    assert response.status_code == 200, response.text
    [card] = response.json()["cards"]
    assert "ordered: not known" in card["summary"] and "landmark" not in card["summary"].split("ordered:")[1], card["summary"]
    assert "suggestions" not in card
    assert "77012" in card["detail"] and "(ordered: not known" in card["detail"]
