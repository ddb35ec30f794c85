"""Turning fired rating rules into the four ratings and the one recommended modality.

Mechanics only; the ratings and the preference order come from `rules/`:
a rule listed under another fired rule's `overrides` drops out; the remaining rules
for a modality must agree; every modality must be rated; the recommendation is the
first modality in `policy.yaml`'s preference rated usually appropriate. Any breach is
an `EngineError`: a defect of the rule base, never a silent default.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from guidance_rules.errors import EngineError
from guidance_rules.model import Category, Modality
from guidance_rules.rulebase.domain import KnowledgeBase, Rule


@dataclass(frozen=True)
class RatingResult:
    category: Category
    rules: tuple[str, ...]


def rate(fired: Iterable[Rule]) -> dict[Modality, RatingResult]:
    fired = list(fired)
    overridden = {other for rule in fired for other in rule.overrides}
    by_modality: dict[Modality, dict[Category, list[str]]] = {}
    for rule in fired:
        if rule.id in overridden:
            continue
        for modality, category in rule.rate.items():
            by_modality.setdefault(modality, {}).setdefault(category, []).append(rule.id)
    ratings = {}
    for modality in Modality:
        categories = by_modality.get(modality)
        if not categories:
            raise EngineError(f"no rule rated {modality.value}: the rule base has a gap")
        if len(categories) > 1:
            shown = "; ".join(f"{c.value} by {', '.join(ids)}" for c, ids in categories.items())
            raise EngineError(f"rules disagree on {modality.value} ({shown}) and none overrides the other")
        ((category, ids),) = categories.items()
        ratings[modality] = RatingResult(category, tuple(ids))
    return ratings


def select(knowledge: KnowledgeBase, ratings: dict[Modality, RatingResult]) -> Modality:
    for modality in knowledge.policy.preference:
        if ratings[modality].category is Category.USUALLY_APPROPRIATE:
            return modality
    raise EngineError("no modality is rated usually appropriate: the rule base has a gap")
