"""guidance-rules: which imaging guidance an injection case calls for, and why, with sources.

from guidance_rules import Case, recommend
rec = recommend(Case(site="hip", injectate="cell_based", anatomy_variance=["obesity"]))
"""

from guidance_rules._version import __version__
from guidance_rules.errors import CaseError, EngineBusyError, EngineError, EngineUnavailableError, GuidanceRulesError, RuleFileError
from guidance_rules.model import Case, Category, Modality, Recommendation
from guidance_rules.recommendation.recommender import Recommender, recommend
from guidance_rules.rulebase.load import KnowledgeBase, load

__all__ = [
    "Case",
    "CaseError",
    "Category",
    "EngineBusyError",
    "EngineError",
    "EngineUnavailableError",
    "GuidanceRulesError",
    "KnowledgeBase",
    "Modality",
    "Recommendation",
    "Recommender",
    "RuleFileError",
    "__version__",
    "load",
    "recommend",
]
