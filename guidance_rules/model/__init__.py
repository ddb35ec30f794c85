"""The pure data model: what a case says (`Case`) and what the answer says (`Recommendation`).

Nothing here imports the rule base or the engine; every other layer imports this one.
"""

from guidance_rules.model.answer import (
    Assumption,
    Citation,
    Evidence,
    Figure,
    FrozenMap,
    Note,
    Rating,
    Ratings,
    Reason,
    Recommendation,
    RulesetInfo,
    Step,
    Summary,
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
    "Figure",
    "FrozenMap",
    "Imaging",
    "Injectate",
    "Modality",
    "Note",
    "Rating",
    "Ratings",
    "Reason",
    "Recommendation",
    "Region",
    "RulesetInfo",
    "Step",
    "Summary",
    "TargetSize",
    "Tissue",
    "Variance",
    "fold_case",
]
