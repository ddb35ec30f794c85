"""Strata and compilation, and the proof that behaviour comes from the rule files, not from Python."""

from __future__ import annotations

from typing import Any

from guidance_rules import Modality
from guidance_rules.engine.compile import compile_rules
from guidance_rules.recommendation.recommender import Recommender
from guidance_rules.rulebase.domain import KnowledgeBase
from guidance_rules.rulebase.load import load
from tests.conftest import find_rule


def test_negated_facts_are_read_only_after_their_stratum(knowledge: KnowledgeBase) -> None:
    compiled = compile_rules(knowledge)
    done: set[str] = set(compiled.underived)
    for stratum in compiled.strata:
        for rule in stratum.rules:
            read = {f for f in rule.reads if f in knowledge.facts}
            assert read <= done, f"{rule.id} reads {read - done} before it is complete"
        done |= set(stratum.produces)
    assert done == set(knowledge.facts)


def test_every_active_rule_is_compiled_once(knowledge: KnowledgeBase) -> None:
    compiled = compile_rules(knowledge)
    ids = [r.id for s in compiled.strata for r in s.rules]
    assert sorted(ids) == sorted(r.id for r in knowledge.rules)


def test_changing_a_rule_file_changes_behaviour(rule_copy: Any) -> None:
    """Let depth rule LU-DEPTH also cover superficial targets: the knee loses landmark guidance."""
    baseline = Recommender().recommend({"site": "knee", "injectate": "corticosteroid"})
    assert baseline.modality is Modality.LANDMARK
    folder = rule_copy("landmark.yaml", lambda d: find_rule(d, "LU-DEPTH")["when"].update(depth=["superficial", "intermediate", "deep"]))
    altered = Recommender(load(folder)).recommend({"site": "knee", "injectate": "corticosteroid"})
    assert altered.modality is Modality.ULTRASOUND
    assert altered.ruleset.digest != baseline.ruleset.digest


def test_changing_the_policy_file_changes_the_choice(rule_copy: Any) -> None:
    folder = rule_copy("policy.yaml", lambda d: d["policy"].update(preference=["both", "fluoroscopy", "ultrasound", "landmark"]))
    rec = Recommender(load(folder)).recommend({"site": "hip", "injectate": "corticosteroid"})
    assert rec.modality is Modality.FLUOROSCOPY


def test_draft_rules_do_not_fire(rule_copy: Any) -> None:
    folder = rule_copy("imaging.yaml", lambda d: find_rule(d, "DC-CELL-BASED").update(status="draft"))
    kb = load(folder)
    assert "DC-CELL-BASED" in {r.id for r in kb.inactive}
    rec = Recommender(kb).recommend({"site": "knee", "injectate": "cell_based"})
    assert rec.modality is Modality.LANDMARK


def test_a_case_is_resolved_by_each_rule_base_that_answers_it(rule_copy: Any) -> None:
    """A Case is plain data: each Recommender resolves it against its own rule base."""
    from guidance_rules import Case

    case = Case.model_validate(
        {"region": "peripheral", "depth": "superficial", "tissue": "joint", "palpable": True, "injectate": "corticosteroid"}
    )
    shipped = Recommender()
    assert shipped.recommend(case).modality is Modality.ULTRASOUND  # a joint of unknown size is assumed small
    folder = rule_copy("defaults.yaml", lambda d: d["fields"].update(target_size="large"))
    altered = Recommender(load(folder))
    assert altered.resolve(case).values["target_size"] == "large"
    assert altered.recommend(case).modality is Modality.LANDMARK
