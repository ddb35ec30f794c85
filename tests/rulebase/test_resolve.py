"""Resolution at its own layer (mutation testing found most of resolve.py checked only through
whole recommendations): the precedence case > site > tissue > field default with each origin, plain
values, and every error's fields, kind and message."""

from __future__ import annotations

import pytest

from guidance_rules.errors import CaseError
from guidance_rules.model import Case
from guidance_rules.rulebase.conditions import CASE_FIELDS
from guidance_rules.rulebase.domain import KnowledgeBase
from guidance_rules.rulebase.resolve import REQUIRED_WITHOUT_SITE, resolve


def plain(value: object) -> object:
    return tuple(sorted(value)) if isinstance(value, list) else value


def test_a_site_fills_its_own_fields_and_the_field_defaults_the_rest(knowledge: KnowledgeBase) -> None:
    site = knowledge.sites["knee"]
    resolution = resolve({"site": "knee", "injectate": "prp"}, knowledge)
    assert (resolution.values["site"], resolution.values["injectate"]) == ("knee", "prp")
    assert [name for name, _, _ in resolution.assumptions] == [f for f in CASE_FIELDS if f not in ("site", "injectate")]
    for name, value, origin in resolution.assumptions:
        if name in site.defaults:
            assert (value, origin) == (plain(site.defaults[name]), "site:knee"), name
        else:
            assert (value, origin) == (plain(knowledge.field_defaults[name]), "default"), name
        assert resolution.values[name] == value


def test_without_a_site_the_tissue_defaults_come_before_the_field_defaults(knowledge: KnowledgeBase) -> None:
    case = {"region": "spinal", "depth": "deep", "tissue": "ligament", "injectate": "prp"}
    resolution = resolve(case, knowledge)
    tissue = knowledge.tissue_defaults["ligament"]
    assert tissue and resolution.values["site"] == ""
    assert [name for name, _, _ in resolution.assumptions] == [f for f in CASE_FIELDS if f not in case and f != "site"]
    for name, value, origin in resolution.assumptions:
        expected = (plain(tissue[name]), "tissue:ligament") if name in tissue else (plain(knowledge.field_defaults[name]), "default")
        assert (value, origin) == expected, name


def test_given_values_are_kept_plain_and_a_case_reads_like_a_mapping(knowledge: KnowledgeBase) -> None:
    given = {"site": "hip", "injectate": "prp", "anatomy_variance": ["prior_surgery", "obesity"], "palpable": False, "depth": "deep"}
    from_dict = resolve(given, knowledge)
    from_case = resolve(Case.model_validate(given), knowledge)
    assert from_dict == from_case
    values = from_case.values
    assert values["anatomy_variance"] == ("obesity", "prior_surgery") and values["injectate"] == "prp"
    assert type(values["injectate"]) is str and values["palpable"] is False
    assert "depth" not in {name for name, _, _ in from_case.assumptions}  # given, equal to the site's own: no assumption


def error(knowledge: KnowledgeBase, case: dict[str, object]) -> CaseError:
    with pytest.raises(CaseError) as caught:
        resolve(case, knowledge)
    return caught.value


def test_an_unknown_site_names_the_closest_and_every_valid_one(knowledge: KnowledgeBase) -> None:
    valid = ", ".join(knowledge.sites)
    typo = error(knowledge, {"site": "kne", "injectate": "prp"})
    assert (typo.fields, typo.kind) == (("site",), "unknown_site")
    assert str(typo) == f"unknown site 'kne'; did you mean 'knee'? valid sites: {valid}"
    assert str(error(knowledge, {"site": "zzzz", "injectate": "prp"})) == f"unknown site 'zzzz'; valid sites: {valid}"


def test_a_value_that_contradicts_the_site_names_both(knowledge: KnowledgeBase) -> None:
    found = error(knowledge, {"site": "knee", "injectate": "prp", "tissue": "bursa"})
    assert (found.fields, found.kind) == (("tissue", "site"), "contradiction")
    assert str(found) == (
        "tissue 'bursa' contradicts site 'knee', whose tissue is 'joint'; "
        "leave tissue out, or leave out the site and describe the target field by field"
    )


@pytest.mark.parametrize("missing", REQUIRED_WITHOUT_SITE)
def test_without_a_site_region_depth_and_tissue_are_required(knowledge: KnowledgeBase, missing: str) -> None:
    case = {"region": "spinal", "depth": "deep", "tissue": "ligament", "injectate": "prp"}
    del case[missing]
    found = error(knowledge, case)
    allowed = ", ".join(str(v) for v in CASE_FIELDS[missing].values)
    assert (found.fields, found.kind) == ((missing,), "required_without_site")
    assert str(found) == f"{missing} is required when no site is given; one of: {allowed}"


def test_a_constraint_names_its_fields_and_their_values(knowledge: KnowledgeBase) -> None:
    [constraint] = [c for c in knowledge.constraints if c.id == "C-EFFUSION-TISSUE"]
    found = error(knowledge, {"site": "epidural_interlaminar", "injectate": "prp", "anatomy_variance": ["effusion"]})
    assert (found.kind, set(found.fields)) == ("contradiction", {t.field for t in constraint.tests})
    shown = ", ".join(f"{t.field}={ {'anatomy_variance': ('effusion',), 'tissue': 'epidural'}[t.field] }" for t in constraint.tests)
    assert str(found) == f"contradictory case ({shown}): {constraint.message}"


def test_list_values_and_bools_are_plain(knowledge: KnowledgeBase) -> None:
    from guidance_rules.rulebase.resolve import _show

    values = resolve(Case(site="hip", injectate="prp", anatomy_variance=["obesity"]), knowledge).values
    assert [type(v) for v in values["anatomy_variance"]] == [str]  # the enum member's value, not the member
    assert (_show(True), _show(False), _show("deep"), _show(("a",))) == ("true", "false", "deep", "('a',)")


def test_an_identity_field_a_site_leaves_open_may_be_given(knowledge: KnowledgeBase) -> None:
    """Only a value the site states can be contradicted (a rule base may leave one open)."""
    import dataclasses

    knee = knowledge.sites["knee"]
    open_region = dataclasses.replace(knee, defaults={k: v for k, v in knee.defaults.items() if k != "region"})
    kb = dataclasses.replace(knowledge, sites={**knowledge.sites, "knee": open_region})
    assert resolve({"site": "knee", "injectate": "prp", "region": "peripheral"}, kb).values["region"] == "peripheral"
