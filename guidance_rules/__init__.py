"""guidance-rules: which imaging guidance an injection case calls for, and why, with sources.

from guidance_rules import Case, recommend
rec = recommend(Case(site="hip", injectate="cell_based", anatomy_variance=["obesity"]))

Every name the README uses is exported here (`__all__`; tests/test_public_api.py checks it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from guidance_rules._version import __version__

if TYPE_CHECKING:
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
    from guidance_rules.recommendation.recommender import Recommender, process_recommender, recommend
    from guidance_rules.recommendation.whatif import AssumedInput, WhatIf, inputs_that_matter, what_if
    from guidance_rules.rulebase.domain import KnowledgeBase
    from guidance_rules.rulebase.load import load

# Every public name is imported on first use, so that `import guidance_rules.<sub>` (the command
# line's entry, a worker process) runs only what it needs, and what-if is never loaded by a plain
# `recommend`. Each name lives in the module listed here.
_HOME = {
    "guidance_rules.errors": (
        "CaseError",
        "EngineBusyError",
        "EngineError",
        "EngineUnavailableError",
        "GuidanceRulesError",
        "RuleFileError",
    ),
    "guidance_rules.model": (
        "Approach",
        "Assumption",
        "Case",
        "Category",
        "Citation",
        "Depth",
        "Evidence",
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
    ),
    "guidance_rules.recommendation.recommender": ("Recommender", "process_recommender", "recommend"),
    "guidance_rules.recommendation.whatif": ("AssumedInput", "WhatIf", "inputs_that_matter", "what_if"),
    "guidance_rules.rulebase.load": ("KnowledgeBase", "load"),
}
_LAZY = {name: module for module, names in _HOME.items() for name in names}
_SUBPACKAGES = ("audit", "cli", "engine", "errors", "model", "recommendation", "rulebase", "service")


def __getattr__(name: str) -> Any:
    import importlib

    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    if name in _SUBPACKAGES:  # `import guidance_rules; guidance_rules.model.Case`, as before
        return importlib.import_module(f"guidance_rules.{name}")
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
    "process_recommender",
    "recommend",
    "what_if",
]


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
