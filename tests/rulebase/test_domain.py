"""The rule base as the other layers see it (`domain`): the fields each kind of rule may test (only
output rules see equipment and the chosen modality), a site's own evidence values, the article's
propositions, and rules by id."""

from __future__ import annotations

import dataclasses

import pytest

from guidance_rules.rulebase.conditions import BOOL, CASE_FIELDS, EQUIPMENT_FIELD, MODALITY_FIELD, FieldSpec
from guidance_rules.rulebase.domain import NO_SITE_EVIDENCE, SITE_FIELDS, KnowledgeBase


def test_rating_rules_see_the_case_the_site_its_evidence_and_the_facts(knowledge: KnowledgeBase) -> None:
    fields = knowledge.vocabulary(output=False)
    case = [name for name in CASE_FIELDS if name != EQUIPMENT_FIELD]
    assert list(fields) == [*case, "site", *SITE_FIELDS, *knowledge.facts]
    assert all(fields[name] == CASE_FIELDS[name] for name in case)
    assert fields["site"] == FieldSpec("site", (*knowledge.sites, ""))
    assert fields["landmark_evidence"] == FieldSpec("landmark_evidence", ("close", "gap", "unknown"))
    assert all(fields[fact] == FieldSpec(fact, BOOL) for fact in knowledge.facts)


def test_output_rules_also_see_equipment_and_the_chosen_modality(knowledge: KnowledgeBase) -> None:
    rating = knowledge.vocabulary(output=False)
    output = knowledge.vocabulary(output=True)
    assert set(output) - set(rating) == {EQUIPMENT_FIELD, "modality"}
    assert output[EQUIPMENT_FIELD] == CASE_FIELDS[EQUIPMENT_FIELD]
    assert output["modality"] == MODALITY_FIELD
    assert all(output[name] == spec for name, spec in rating.items())


def test_a_site_gives_its_own_landmark_evidence_and_no_site_gives_unknown(knowledge: KnowledgeBase) -> None:
    shown = {knowledge.sites[key].landmark_evidence for key in knowledge.sites}
    assert {"close", "gap"} <= shown  # the shipped catalogue has both, so a mix-up would show
    for key, site in knowledge.sites.items():
        assert knowledge.site_evidence(key) == {
            "landmark_evidence": site.landmark_evidence,
            "us_fluoroscopy_evidence": site.us_fluoroscopy_evidence,
        }
    assert knowledge.site_evidence("") == NO_SITE_EVIDENCE
    assert knowledge.site_evidence("not-a-site") == NO_SITE_EVIDENCE
    assert set(NO_SITE_EVIDENCE.values()) == {"unknown"}


def test_the_no_site_evidence_returned_is_a_copy(knowledge: KnowledgeBase) -> None:
    evidence = knowledge.site_evidence("")
    evidence["landmark_evidence"] = "close"
    assert NO_SITE_EVIDENCE == {"landmark_evidence": "unknown", "us_fluoroscopy_evidence": "unknown"}
    assert knowledge.site_evidence("") == NO_SITE_EVIDENCE


def test_the_propositions_are_the_articles_in_file_order(knowledge: KnowledgeBase) -> None:
    assert knowledge.propositions() == tuple(knowledge.sources["article"].propositions)
    assert knowledge.propositions()[:2] == ("LM1", "LM2")
    without = dataclasses.replace(knowledge, sources={k: v for k, v in knowledge.sources.items() if k != "article"})
    assert without.propositions() == ()


def test_rules_are_found_by_id(knowledge: KnowledgeBase) -> None:
    for rule in knowledge.rules:
        assert knowledge.rule(rule.id) is rule
    with pytest.raises(KeyError):
        knowledge.rule("NO-SUCH-RULE")


def test_a_rule_reads_the_fields_it_tests_and_output_kinds_are_marked(knowledge: KnowledgeBase) -> None:
    for rule in knowledge.rules:
        assert rule.reads == tuple(test.field for test in rule.tests)
        assert rule.is_output == (rule.kind in ("documentation", "caution", "question"))
    assert {r.kind for r in knowledge.rules} == {"derive", "rate", "documentation", "caution", "question"}
