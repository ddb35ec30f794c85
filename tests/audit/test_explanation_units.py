"""Fast unit tests of the audit's explanation checks (guidance_rules.audit.explanation): each fault a
chain can show (a step with no fitting source, a citation outside its scope in a step, a grouped
reason or a note, an override marked wrongly or not at all) is found on one hand-made case, and a
faithful chain shows none (issue 24: mutation testing of the audit)."""

from __future__ import annotations

import dataclasses
from typing import Any

from guidance_rules.audit.explanation import explanation_problems
from guidance_rules.engine.policy import RatingResult
from guidance_rules.model import Category, Citation, Modality, Reason, Step
from guidance_rules.recommendation.explain import Evaluation, Parts
from guidance_rules.recommendation.recommender import Recommender
from guidance_rules.rulebase.domain import KnowledgeBase
from guidance_rules.rulebase.load import default_knowledge

KB = default_knowledge()
REC = Recommender(KB, cache_size=0)
PARTS = Parts(KB)
HIP_CONTRAST = {"site": "hip", "injectate": "corticosteroid", "contrast_confirmation": True}  # RATE-US-CONTRAST overrides RATE-US-FIT
HONG = Citation(source="hong2014", locator="results")  # scoped to epidural_transforaminal
HONG_SAID = "cites hong2014 (results), which is not evidence for this case (see its scope in sources.yaml)"


def evaluation(case: dict[str, Any]) -> Evaluation:
    return REC.evaluate(REC.resolve(case).values)


class Shown:
    """Parts whose chain is the one given: a planted explanation for a real evaluation."""

    def __init__(self, steps: tuple[Step, ...], knowledge: KnowledgeBase = KB) -> None:
        self.knowledge = knowledge
        self.steps = steps

    def reasoning(self, evaluation: Evaluation) -> tuple[Step, ...]:
        return self.steps


def problems(steps: tuple[Step, ...], ev: Evaluation) -> list[tuple[str, str]]:
    return explanation_problems(Shown(steps), ev)  # type: ignore[arg-type]


def step_of(steps: tuple[Step, ...], rule: str) -> int:
    return next(i for i, s in enumerate(steps) if s.rule == rule)


def replaced(steps: tuple[Step, ...], index: int, **update: Any) -> tuple[Step, ...]:
    return (*steps[:index], steps[index].model_copy(update=update), *steps[index + 1 :])


def test_a_faithful_chain_shows_no_problem() -> None:
    for case in (
        HIP_CONTRAST,
        {"site": "knee", "injectate": "corticosteroid"},
        {"site": "epidural_transforaminal", "injectate": "corticosteroid"},
        {"site": "lumbar_facet", "injectate": "prp", "anatomy_variance": ["obesity"]},
        {"region": "peripheral", "depth": "deep", "tissue": "nerve", "injectate": "prp"},
    ):
        ev = evaluation(case)
        assert explanation_problems(PARTS, ev) == [], case


def test_the_override_case_marks_the_overridden_rating() -> None:
    """The planted faults below start from this chain: RATE-US-FIT marked overridden by RATE-US-CONTRAST."""
    steps = PARTS.reasoning(evaluation(HIP_CONTRAST))
    assert steps[step_of(steps, "RATE-US-FIT")].overridden_by == "RATE-US-CONTRAST"


def test_a_step_without_a_source_is_a_citation_fault() -> None:
    ev = evaluation(HIP_CONTRAST)
    steps = PARTS.reasoning(ev)
    first, last = steps[0].rule, steps[-1].rule
    planted = replaced(replaced(steps, 0, sources=()), len(steps) - 1, sources=())
    assert problems(planted, ev) == [
        ("citation-fit", f"step {first} cites no source that is evidence for this case"),
        ("citation-fit", f"step {last} cites no source that is evidence for this case"),
    ]


def test_a_citation_outside_its_scope_is_named_with_its_rule() -> None:
    ev = evaluation(HIP_CONTRAST)
    steps = PARTS.reasoning(ev)
    i = step_of(steps, "RATE-US-CONTRAST")
    planted = replaced(steps, i, sources=(*steps[i].sources, HONG))
    assert problems(planted, ev) == [("citation-fit", f"RATE-US-CONTRAST {HONG_SAID}")]
    only = replaced(steps, i, sources=(HONG,))  # a source is kept, but it does not fit
    assert problems(only, ev) == [("citation-fit", f"RATE-US-CONTRAST {HONG_SAID}")]


def test_the_same_citation_fits_inside_its_scope() -> None:
    ev = evaluation({"site": "epidural_transforaminal", "injectate": "corticosteroid"})
    steps = PARTS.reasoning(ev)
    assert problems(replaced(steps, 0, sources=(*steps[0].sources, HONG)), ev) == []


def test_a_grouped_reason_outside_its_scope_is_named_with_its_own_rule() -> None:
    ev = evaluation(HIP_CONTRAST)
    steps = PARTS.reasoning(ev)
    fits = Reason(rule="R-FITS", conclusion="c", sources=(Citation(source="article", locator="x"),))
    misfit = Reason(rule="R-GROUPED", conclusion="c", sources=(Citation(source="article", locator="x"), HONG))
    planted = replaced(steps, 0, reasons=(fits, misfit))
    assert problems(planted, ev) == [("citation-fit", f"R-GROUPED {HONG_SAID}")]


def test_a_note_outside_its_scope_is_named() -> None:
    ev = evaluation(HIP_CONTRAST)
    assert ev.outputs
    notes = [ev.outputs[0], dataclasses.replace(ev.outputs[-1], sources=(*ev.outputs[-1].sources, HONG))]
    planted = dataclasses.replace(ev, outputs=notes)
    assert explanation_problems(PARTS, planted) == [("citation-fit", f"{ev.outputs[-1].id} {HONG_SAID}")]


def test_a_step_marked_overridden_by_a_rule_that_did_not_override_it() -> None:
    ev = evaluation(HIP_CONTRAST)
    steps = PARTS.reasoning(ev)
    i = step_of(steps, "RATE-US-FIT")
    fired_other = next(r.id for r in ev.chain if r.rate and r.id not in ("RATE-US-FIT", "RATE-US-CONTRAST"))
    for by in (fired_other, "RATE-US-LIMITED"):  # fired but overrides something else; does override it but did not fire
        planted = replaced(steps, i, overridden_by=by)
        assert problems(planted, ev) == [("override-unmarked", f"RATE-US-FIT is marked overridden by {by}, which did not override it")]


def test_an_overridden_rating_shown_unmarked() -> None:
    ev = evaluation(HIP_CONTRAST)
    assert ev.ratings[Modality.ULTRASOUND].category is Category.MAY_BE_APPROPRIATE
    steps = PARTS.reasoning(ev)
    planted = replaced(steps, step_of(steps, "RATE-US-FIT"), overridden_by=None)
    said = "RATE-US-FIT shows ultrasound usually_appropriate unmarked, but the answer rates it may_be_appropriate"
    assert problems(planted, ev) == [("override-unmarked", said)]


def test_every_step_is_checked_after_a_wrongly_marked_one() -> None:
    ev = evaluation(HIP_CONTRAST)
    steps = PARTS.reasoning(ev)
    i = step_of(steps, "RATE-US-FIT")
    planted = replaced(steps, i, overridden_by="RATE-US-LIMITED")
    ratings = {**ev.ratings, Modality.ULTRASOUND: RatingResult(Category.USUALLY_APPROPRIATE, ("RATE-US-FIT",))}
    found = problems(planted, dataclasses.replace(ev, ratings=ratings))
    assert found == [
        ("override-unmarked", "RATE-US-FIT is marked overridden by RATE-US-LIMITED, which did not override it"),
        ("override-unmarked", "RATE-US-CONTRAST shows ultrasound may_be_appropriate unmarked, but the answer rates it usually_appropriate"),
    ]


def test_each_modality_a_rule_rates_is_compared() -> None:
    ev = evaluation(HIP_CONTRAST)
    landmark = ev.ratings[Modality.LANDMARK].category
    assert landmark is Category.USUALLY_NOT_APPROPRIATE  # INV-CONTRAST-NOT-LANDMARK
    two = {Modality.ULTRASOUND: Category.USUALLY_APPROPRIATE, Modality.LANDMARK: Category.USUALLY_APPROPRIATE}
    chain = [dataclasses.replace(r, rate=two) if r.id == "RATE-US-CONTRAST" else r for r in ev.chain]
    found = problems(PARTS.reasoning(ev), dataclasses.replace(ev, chain=chain))
    assert found == [
        ("override-unmarked", "RATE-US-CONTRAST shows ultrasound usually_appropriate unmarked, but the answer rates it may_be_appropriate"),
        (
            "override-unmarked",
            "RATE-US-CONTRAST shows landmark usually_appropriate unmarked, but the answer rates it usually_not_appropriate",
        ),
    ]


def test_steps_of_rules_that_rate_nothing_or_did_not_fire_are_not_override_checked() -> None:
    ev = evaluation(HIP_CONTRAST)
    steps = PARTS.reasoning(ev)
    derive = next(i for i, s in enumerate(steps) if s.rule in {r.id for r in ev.chain if not r.rate})
    planted = replaced(replaced(steps, derive, overridden_by="NOBODY"), len(steps) - 1, overridden_by="NOBODY")  # and the policy step
    assert problems(planted, ev) == []
