"""Case validation: every field's bad values, unknown keys, contradictions, defaults and assumptions."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from guidance_rules import Case, recommend
from guidance_rules.rulebase.conditions import CASE_FIELDS
from guidance_rules.rulebase.domain import KnowledgeBase

BASE: dict[str, Any] = {"site": "knee", "injectate": "prp"}
CUSTOM: dict[str, Any] = {"region": "peripheral", "depth": "superficial", "tissue": "joint", "injectate": "prp"}


def error_fields(data: dict[str, Any]) -> set[str]:
    with pytest.raises(ValidationError) as caught:
        Case.model_validate(data)
    return {str(e["loc"][0]) if e["loc"] else "" for e in caught.value.errors()}


@pytest.mark.parametrize("field", [f for f in CASE_FIELDS if not CASE_FIELDS[f].is_list])
@pytest.mark.parametrize("bad", ["nonsense", 7, 1.5, [], {"a": 1}])
def test_each_scalar_field_rejects_bad_values(field: str, bad: Any) -> None:
    assert field in error_fields({**BASE, field: bad})


@pytest.mark.parametrize("field", ["anatomy_variance", "available_modalities"])
@pytest.mark.parametrize("bad", ["obesity", ["nonsense"], [1], 3, {"a": 1}])
def test_list_fields_reject_bad_values(field: str, bad: Any) -> None:
    assert field in error_fields({**BASE, field: bad})


def test_booleans_are_strict() -> None:
    assert "palpable" in error_fields({**BASE, "palpable": "true"})
    assert "palpable" in error_fields({**BASE, "palpable": 1})


def test_unknown_site_suggests_the_closest() -> None:
    with pytest.raises(ValidationError, match="did you mean 'hip'"):
        recommend(Case(site="hipp", injectate="prp"))


def test_unknown_keys_are_rejected() -> None:
    assert "colour" in error_fields({**BASE, "colour": "red"})


def test_injectate_is_required() -> None:
    assert "injectate" in error_fields({"site": "knee"})


@pytest.mark.parametrize("missing", ["region", "depth", "tissue"])
def test_anatomy_is_required_without_a_site(missing: str) -> None:
    data = {k: v for k, v in CUSTOM.items() if k != missing}
    with pytest.raises(ValidationError, match=f"{missing} is required when no site is given"):
        recommend(data)


@pytest.mark.parametrize(
    ("case", "constraint"),
    [
        ({"region": "spinal", "depth": "deep", "tissue": "tendon_sheath"}, "spinal target"),
        ({"region": "spinal", "depth": "deep", "tissue": "tendon"}, "spinal target"),
        ({"region": "spinal", "depth": "deep", "tissue": "bursa"}, "spinal target"),
        ({"region": "peripheral", "depth": "deep", "tissue": "epidural"}, "epidural space is spinal"),
        ({"region": "spinal", "depth": "superficial", "tissue": "joint"}, "paraspinal"),
        ({"region": "peripheral", "depth": "deep", "tissue": "joint", "palpable": True}, "cannot be easily palpated"),
        ({"site": "hip", "palpable": True}, "cannot be easily palpated"),
        ({"site": "epidural_interlaminar", "anatomy_variance": ["effusion"]}, "effusion distends a joint, bursa or tendon sheath"),
        ({"site": "plantar_fascia", "anatomy_variance": ["effusion", "obesity"]}, "effusion distends a joint, bursa or tendon sheath"),
        ({"region": "peripheral", "depth": "deep", "tissue": "nerve", "anatomy_variance": ["effusion"]}, "leave effusion out"),
    ],
)
def test_each_contradiction_is_rejected(case: dict[str, Any], constraint: str) -> None:
    with pytest.raises(ValidationError, match=constraint):
        recommend({**case, "injectate": "prp"})


@pytest.mark.parametrize(("field", "value"), [("region", "spinal"), ("tissue", "bursa")])
def test_site_identity_cannot_be_contradicted(field: str, value: str) -> None:
    with pytest.raises(ValidationError, match="contradicts site 'knee'") as caught:
        recommend({**BASE, field: value})
    assert {e["loc"][0] for e in caught.value.errors()} == {field, "site"}


def test_site_defaults_are_assumptions_with_origin() -> None:
    rec = recommend({"site": "hip", "injectate": "prp", "depth": "intermediate"})
    assumed = {a.field: (a.value, a.origin) for a in rec.assumptions}
    assert "depth" not in assumed  # given explicitly, so not assumed
    assert assumed["region"] == ("peripheral", "site:hip")
    assert assumed["anatomy_variance"] == ((), "default")
    assert assumed["available_modalities"] == (("fluoroscopy", "ultrasound"), "default")


def test_tissue_defaults_apply_without_a_site() -> None:
    rec = recommend({"region": "peripheral", "depth": "superficial", "tissue": "nerve", "injectate": "prp"})
    assumed = {a.field: (a.value, a.origin) for a in rec.assumptions}
    assert assumed["target_size"] == ("small", "tissue:nerve")
    assert assumed["precise_plane"] == (True, "tissue:nerve")
    assert assumed["palpable"] == (False, "default")


def test_every_unstated_value_is_an_assumption(knowledge: KnowledgeBase) -> None:
    rec = recommend(BASE)
    assert {a.field for a in rec.assumptions} == set(CASE_FIELDS) - {"injectate"}


def test_lists_are_order_and_repeat_insensitive() -> None:
    one = Case(site="knee", injectate="prp", anatomy_variance=["obesity", "effusion", "obesity"])  # type: ignore[arg-type]
    two = Case(site="knee", injectate="prp", anatomy_variance=["effusion", "obesity"])  # type: ignore[arg-type]
    assert one == two and hash(one) == hash(two)


def test_case_is_frozen() -> None:
    case = Case(site="knee", injectate="prp")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        case.site = "hip"


def test_recommendation_cannot_be_mutated_by_a_caller() -> None:
    rec = recommend(BASE)
    with pytest.raises(TypeError):
        rec.reasoning[0].facts["depth"] = "deep"  # type: ignore[index]
    with pytest.raises(ValidationError):
        rec.modality = "landmark"  # type: ignore[assignment]
    again = recommend(BASE)
    assert again.model_dump() == rec.model_dump()


# The contract's top-level output keys (docs/contract.md), pinned once for the library and the CLI.
CONTRACT_KEYS = frozenset(
    {
        "summary",
        "modality",
        "ratings",
        "reasoning",
        "assumptions",
        "documentation",
        "cautions",
        "questions",
        "evidence",
        "ruleset",
    }
)


def test_contract_json_keys() -> None:
    data = recommend({"site": "hip", "injectate": "cell_based", "anatomy_variance": ["obesity"]}).model_dump(mode="json")
    assert set(data) == CONTRACT_KEYS
    assert set(data["ratings"]) == {"ultrasound", "fluoroscopy", "both", "landmark"}
    for rating in data["ratings"].values():
        assert rating["category"] in {"usually_appropriate", "may_be_appropriate", "usually_not_appropriate"} and rating["rules"]
    for step in data["reasoning"]:
        assert (
            set(step) == {"rule", "conclusion", "facts", "sources", "reasons", "overridden_by"} and step["sources"]
        )  # two keys added (issue 19)
    assert all(set(a) == {"field", "value", "origin"} for a in data["assumptions"])
    assert set(data["ruleset"]) == {"version", "digest"}


def test_an_unvalidated_case_is_validated_before_use() -> None:
    unchecked = Case.model_construct(site="knee", injectate="prp")
    assert recommend(unchecked).modality.value == "landmark"
    with pytest.raises(ValidationError):
        recommend(Case.model_construct(site="nowhere", injectate="prp"))


def test_site_identity_given_with_the_same_value_is_accepted_and_not_assumed() -> None:
    """Decision (review finding 8): a site's region and tissue are what the site *is*, not
    defaults. Repeating them is accepted; a different value is a contradiction (another target)."""
    rec = recommend({"site": "knee", "injectate": "prp", "tissue": "joint", "region": "peripheral"})
    assumed = {a.field for a in rec.assumptions}
    assert "tissue" not in assumed and "region" not in assumed and "depth" in assumed
    with pytest.raises(ValidationError, match="leave tissue out, or leave out the site"):
        recommend(Case(site="knee", injectate="prp", tissue="bursa"))


def test_other_site_defaults_yield_to_explicit_values() -> None:
    rec = recommend({"site": "knee", "injectate": "corticosteroid", "depth": "intermediate"})
    assert ("depth", "intermediate") not in {(a.field, a.value) for a in rec.assumptions}
    assert rec.modality.value != "landmark"


def test_caudal_epidural_is_a_valid_superficial_spinal_target() -> None:
    """Regression (review finding 8): the sacral hiatus was rejected as 'spinal and superficial'."""
    rec = recommend({"region": "spinal", "depth": "superficial", "tissue": "epidural", "palpable": True, "injectate": "corticosteroid"})
    assert rec.modality.value == "fluoroscopy"
    with pytest.raises(ValidationError, match="caudal epidural"):
        recommend(Case(region="spinal", depth="superficial", tissue="joint", injectate="corticosteroid"))


@pytest.mark.parametrize(
    "case",
    [
        {"site": "hip", "injectate": "prp", "approach": "anteromedial"},
        {"region": "spinal", "depth": "deep", "tissue": "joint", "injectate": "prp", "approach": "superolateral"},
        {"region": "peripheral", "depth": "superficial", "tissue": "bursa", "injectate": "prp", "approach": "superolateral"},
    ],
)
def test_approach_only_where_the_evidence_names_paths(case: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="approach"):
        recommend(Case(**case))


def test_approach_defaults_to_unspecified_and_is_listed() -> None:
    rec = recommend({"site": "knee", "injectate": "corticosteroid"})
    assert ("approach", "unspecified", "default") in {(a.field, a.value, a.origin) for a in rec.assumptions}
    assert recommend({"site": "knee", "injectate": "corticosteroid", "approach": "anterolateral"}).modality.value == "ultrasound"


@pytest.mark.parametrize("site", ["knee", "subacromial_bursa", "first_dorsal_compartment"])
def test_an_effusion_is_accepted_where_a_synovial_space_is(site: str) -> None:
    rec = recommend({"site": site, "injectate": "corticosteroid", "anatomy_variance": ["effusion"]})
    assert {"LU-EFFUSION", "LU-EFFUSION-SOFT-TISSUE"} & set(rec.chain_rules())  # a joint's effusion, or fluid in a bursa or sheath


def test_transforaminal_epidural_assumes_contrast() -> None:
    """Contrast under live imaging is how intravascular uptake is seen there (sites.yaml): assumed, and said."""
    rec = recommend({"site": "epidural_transforaminal", "injectate": "corticosteroid"})
    assumed = {a.field: a for a in rec.assumptions}
    assert assumed["contrast_confirmation"].value is True and "site:epidural_transforaminal" in assumed["contrast_confirmation"].origin
