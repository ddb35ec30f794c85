"""Building the Recommendation: the reasoning chain, ratings, notes and evidence.

This is where a fired rule is *explained*: each step names the rule, states its
conclusion, shows the case facts it read with their values, and cites its sources.
"""

from __future__ import annotations

from typing import Any

from .knowledge import KnowledgeBase, Rule, _cite
from .model import (
    Assumption,
    Evidence,
    FrozenDict,
    Modality,
    Note,
    Rating,
    Ratings,
    Recommendation,
    RulesetInfo,
    Step,
)
from .policy import RatingResult
from .resolve import Resolution


def _step(rule: Rule, values: dict[str, Any]) -> Step:
    facts = FrozenDict({field: values[field] for field in rule.reads})
    return Step.model_construct(rule=rule.id, conclusion=rule.conclusion, facts=facts, sources=rule.sources)


def build(
    knowledge: KnowledgeBase,
    resolution: Resolution,
    values: dict[str, Any],
    chain: list[Rule],
    ratings: dict[Modality, RatingResult],
    modality: Modality,
    outputs: list[Rule],
) -> Recommendation:
    """Assemble the answer from already-validated parts (hence model_construct: no re-validation)."""
    policy = knowledge.policy
    steps = [_step(rule, values) for rule in chain]
    steps.append(Step.model_construct(
        rule=policy.id,
        conclusion=f"Recommend {modality.value}: {policy.conclusion[0].lower()}{policy.conclusion[1:]}",
        facts=FrozenDict({m.value: ratings[m].category.value for m in policy.preference}),
        sources=policy.sources,
    ))
    notes: dict[str, list[Note]] = {"documentation": [], "caution": [], "question": []}
    for rule in outputs:
        notes[rule.kind].append(Note.model_construct(rule=rule.id, text=rule.text or "", sources=rule.sources))
    site = knowledge.sites.get(values["site"]) if values["site"] else None
    evidence = tuple(
        Evidence.model_construct(site=site.key, measure=e.measure, ultrasound=e.ultrasound, landmark=e.landmark, note=e.note,
                                 source=_cite(knowledge.sources, e.source, e.locator))
        for e in (site.evidence if site else ())
    )
    return Recommendation.model_construct(
        modality=modality,
        ratings=Ratings.model_construct(**{
            m.value: Rating.model_construct(category=ratings[m].category, rules=ratings[m].rules) for m in Modality
        }),
        reasoning=tuple(steps),
        assumptions=tuple(
            Assumption.model_construct(field=f, value=v, origin=o)
            for f, v, o in resolution.assumptions
        ),
        documentation=tuple(notes["documentation"]),
        cautions=tuple(notes["caution"]),
        questions=tuple(notes["question"]),
        evidence=evidence,
        ruleset=RulesetInfo.model_construct(version=knowledge.version, digest=knowledge.digest),
    )

