"""The policy that turns rating rules into ratings and one modality: overrides, conflicts, gaps, order."""

from __future__ import annotations

from dataclasses import replace

import pytest

from guidance_rules import Category, EngineError, Modality, recommend
from guidance_rules.engine.policy import RatingResult, rate, select
from guidance_rules.rulebase.domain import KnowledgeBase


def test_override_removes_the_overridden_rating(knowledge: KnowledgeBase) -> None:
    rules = [knowledge.rule(i) for i in ("RATE-US-FIT", "RATE-US-LIMITED", "RATE-FL-BONY", "RATE-BOTH-OPTIONAL", "RATE-LANDMARK-NOT")]
    ratings = rate(rules)
    assert ratings[Modality.ULTRASOUND] == RatingResult(Category.USUALLY_NOT_APPROPRIATE, ("RATE-US-LIMITED",))


def test_disagreement_without_override_is_an_error(knowledge: KnowledgeBase) -> None:
    limited = replace(knowledge.rule("RATE-US-LIMITED"), overrides=())
    rules = [
        knowledge.rule("RATE-US-FIT"),
        limited,
        knowledge.rule("RATE-FL-BONY"),
        knowledge.rule("RATE-BOTH-OPTIONAL"),
        knowledge.rule("RATE-LANDMARK-NOT"),
    ]
    with pytest.raises(EngineError, match="rules disagree on ultrasound"):
        rate(rules)


def test_unrated_modality_is_an_error(knowledge: KnowledgeBase) -> None:
    with pytest.raises(EngineError, match="no rule rated fluoroscopy"):
        rate([knowledge.rule("RATE-US-FIT"), knowledge.rule("RATE-LANDMARK-NOT"), knowledge.rule("RATE-BOTH-UNNEEDED")])


def _ratings(**categories: Category) -> dict[Modality, RatingResult]:
    return {Modality(m): RatingResult(c, ("R",)) for m, c in categories.items()}


U, M, N = Category.USUALLY_APPROPRIATE, Category.MAY_BE_APPROPRIATE, Category.USUALLY_NOT_APPROPRIATE


@pytest.mark.parametrize(
    ("categories", "expected"),
    [
        # review finding 5: a single modality rated usually appropriate wins over the combination
        ({"both": U, "ultrasound": U, "fluoroscopy": U, "landmark": N}, Modality.ULTRASOUND),
        ({"both": U, "ultrasound": M, "fluoroscopy": M, "landmark": N}, Modality.BOTH),
        ({"both": M, "ultrasound": U, "fluoroscopy": U, "landmark": N}, Modality.ULTRASOUND),
        ({"both": M, "ultrasound": N, "fluoroscopy": U, "landmark": N}, Modality.FLUOROSCOPY),
        ({"both": N, "ultrasound": U, "fluoroscopy": N, "landmark": U}, Modality.ULTRASOUND),
        ({"both": N, "ultrasound": M, "fluoroscopy": N, "landmark": U}, Modality.LANDMARK),
    ],
)
def test_selection_follows_the_preference_order(knowledge: KnowledgeBase, categories: dict[str, Category], expected: Modality) -> None:
    assert select(knowledge, _ratings(**categories)) is expected


def test_nothing_usually_appropriate_is_an_error(knowledge: KnowledgeBase) -> None:
    with pytest.raises(EngineError, match="no modality is rated usually appropriate"):
        select(knowledge, _ratings(both=M, ultrasound=M, fluoroscopy=N, landmark=N))


def test_policy_step_ends_the_chain() -> None:
    rec = recommend({"site": "sacroiliac", "injectate": "corticosteroid"})
    assert rec.reasoning[-1].rule == "POLICY-SELECT"
    assert rec.reasoning[-1].facts["fluoroscopy"] == "usually_appropriate"


def test_equipment_adds_a_caution_never_changes_the_modality() -> None:
    full = recommend({"site": "hip", "injectate": "cell_based"})
    lacking = recommend({"site": "hip", "injectate": "cell_based", "available_modalities": ["fluoroscopy"]})
    assert lacking.modality == full.modality == Modality.ULTRASOUND
    assert lacking.ratings == full.ratings and lacking.reasoning == full.reasoning
    assert "CAUTION-REFER-ULTRASOUND" in {c.rule for c in lacking.cautions}
    assert "CAUTION-REFER-ULTRASOUND" not in {c.rule for c in full.cautions}


def test_a_disagreement_names_each_category_and_every_rule_behind_it(knowledge: KnowledgeBase) -> None:
    """The message is what a rule author reads to fix the rule base: each side, every rule on it."""
    limited = replace(knowledge.rule("RATE-US-LIMITED"), overrides=())
    fit_again = replace(knowledge.rule("RATE-US-FIT"), id="RATE-US-FIT-2")
    others = [knowledge.rule(i) for i in ("RATE-FL-BONY", "RATE-BOTH-OPTIONAL", "RATE-LANDMARK-NOT")]
    with pytest.raises(EngineError) as caught:
        rate([knowledge.rule("RATE-US-FIT"), fit_again, limited, *others])
    assert str(caught.value) == (
        "rules disagree on ultrasound (usually_appropriate by RATE-US-FIT, RATE-US-FIT-2; "
        "usually_not_appropriate by RATE-US-LIMITED) and none overrides the other"
    )


def test_agreeing_rules_are_all_named_in_the_rating(knowledge: KnowledgeBase) -> None:
    fit_again = replace(knowledge.rule("RATE-US-FIT"), id="RATE-US-FIT-2")
    others = [knowledge.rule(i) for i in ("RATE-FL-BONY", "RATE-BOTH-OPTIONAL", "RATE-LANDMARK-NOT")]
    ratings = rate([knowledge.rule("RATE-US-FIT"), fit_again, *others])
    assert ratings[Modality.ULTRASOUND] == RatingResult(Category.USUALLY_APPROPRIATE, ("RATE-US-FIT", "RATE-US-FIT-2"))


def test_nothing_usually_appropriate_says_so_exactly(knowledge: KnowledgeBase) -> None:
    with pytest.raises(EngineError) as caught:
        select(knowledge, _ratings(both=M, ultrasound=M, fluoroscopy=N, landmark=N))
    assert str(caught.value) == "no modality is rated usually appropriate: the rule base has a gap"
