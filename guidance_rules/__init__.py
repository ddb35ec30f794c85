"""guidance-rules: which imaging guidance an injection case calls for, and why, with sources.

from guidance_rules import Case, recommend
rec = recommend(Case(site="hip", injectate="cell_based", anatomy_variance=["obesity"]))
"""

from ._version import __version__
from .errors import CaseError, EngineError, EngineUnavailableError, GuidanceRulesError, RuleFileError
from .model import Case, Category, Modality, Recommendation
from .recommender import Recommender, recommend

__all__ = [
    "Case",
    "CaseError",
    "Category",
    "EngineError",
    "EngineUnavailableError",
    "GuidanceRulesError",
    "Modality",
    "Recommendation",
    "Recommender",
    "RuleFileError",
    "__version__",
    "recommend",
]
