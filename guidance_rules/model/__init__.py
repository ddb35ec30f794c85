"""The pure data model: what a case says (`Case`) and what the answer says (`Recommendation`).

Nothing here imports the rule base or the engine; every other layer imports this one.
"""

from guidance_rules.model.answer import (
    Assumption,
    Citation,
    Evidence,
    FrozenMap,
    Note,
    Rating,
    Ratings,
    Recommendation,
    RulesetInfo,
    Step,
)
from guidance_rules.model.case import (
    LIST_LIMIT,
    Approach,
    Case,
    Category,
    Depth,
    Imaging,
    Injectate,
    Modality,
    Region,
    TargetSize,
    Tissue,
    Variance,
    fold_case,
)

__all__ = [
    "LIST_LIMIT",
    "Approach",
    "Assumption",
    "Case",
    "Category",
    "Citation",
    "Depth",
    "Evidence",
    "FrozenMap",
    "Imaging",
    "Injectate",
    "Modality",
    "Note",
    "Rating",
    "Ratings",
    "Recommendation",
    "Region",
    "RulesetInfo",
    "Step",
    "TargetSize",
    "Tissue",
    "Variance",
    "fold_case",
]
