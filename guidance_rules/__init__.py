"""guidance-rules: which imaging guidance an injection case calls for, and why, with sources.

from guidance_rules import Case, recommend
rec = recommend(Case(site="hip", injectate="cell_based", anatomy_variance=["obesity"]))

Every name the README uses is exported here (`__all__`; tests/test_public_api.py checks it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from guidance_rules._version import __version__
from guidance_rules.errors import CaseError, EngineBusyError, EngineError, EngineUnavailableError, GuidanceRulesError, RuleFileError
from guidance_rules.model import (
    Approach,
    Assumption,
    Case,
    Category,
    Citation,
    Depth,
    Evidence,
    Imaging,
    Injectate,
    Modality,
    Note,
    Rating,
    Ratings,
    Recommendation,
    Region,
    RulesetInfo,
    Step,
    TargetSize,
    Tissue,
    Variance,
    fold_case,
)
from guidance_rules.recommendation.recommender import Recommender, recommend
from guidance_rules.rulebase.load import KnowledgeBase, load

if TYPE_CHECKING:
    from guidance_rules.recommendation.whatif import AssumedInput, WhatIf, inputs_that_matter, what_if

# What-if is imported on first use: the command line starts faster without it.
_LAZY = {name: "guidance_rules.recommendation.whatif" for name in ("AssumedInput", "WhatIf", "inputs_that_matter", "what_if")}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'guidance_rules' has no attribute '{name}'")


__all__ = [
    "Approach",
    "AssumedInput",
    "Assumption",
    "Case",
    "CaseError",
    "Category",
    "Citation",
    "Depth",
    "EngineBusyError",
    "EngineError",
    "EngineUnavailableError",
    "Evidence",
    "GuidanceRulesError",
    "Imaging",
    "Injectate",
    "KnowledgeBase",
    "Modality",
    "Note",
    "Rating",
    "Ratings",
    "Recommendation",
    "Recommender",
    "Region",
    "RuleFileError",
    "RulesetInfo",
    "Step",
    "TargetSize",
    "Tissue",
    "Variance",
    "WhatIf",
    "__version__",
    "fold_case",
    "inputs_that_matter",
    "load",
    "recommend",
    "what_if",
]


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
