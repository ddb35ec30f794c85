"""The schema of each rule file, as pydantic models: what `load` checks a file against before it
builds the domain types from it (guidance_rules.rulebase.domain)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from guidance_rules.model import Category, Modality


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class CitationSpec(_Strict):
    source: str
    locator: str


class ExamplesSpec(_Strict):
    fires: tuple[dict[str, Any], ...] = Field(min_length=1)
    silent: tuple[dict[str, Any], ...] = ()


class ThenSpec(_Strict):
    derive: str | None = None
    rate: dict[Modality, Category] | None = None
    documentation: str | None = None
    caution: str | None = None
    question: str | None = None


class RuleSpec(_Strict):
    id: str = Field(pattern=r"^[A-Z][A-Z0-9]*(-[A-Z0-9]+)*$")
    title: str = Field(min_length=3)
    version: int = Field(ge=1)
    status: Literal["active", "draft", "retired"]
    when: dict[str, Any]
    then: ThenSpec
    overrides: tuple[str, ...] = ()
    conclusion: str = Field(min_length=10)
    rationale: str = Field(min_length=10)
    sources: tuple[CitationSpec, ...] = Field(min_length=1)
    figures: tuple[str, ...] = ()  # evidence points (sites.yaml) this step cites at the case's site
    bottom_line: bool = False  # a note that belongs in the answer's bottom line (refer cautions)
    examples: ExamplesSpec


class RuleFileSpec(_Strict):
    rules: tuple[RuleSpec, ...]


class PropositionSpec(_Strict):
    section: str
    summary: str
    scope: dict[str, Any] | list[dict[str, Any]] | None = None  # a proposition about one site (the hip's figures) is cited only there


class SourceSpec(_Strict):
    title: str
    kind: str
    propositions: dict[str, PropositionSpec] = {}
    # The cases a study is evidence for (a `when:` over case values, e.g. {site: [hip]}); a step
    # cites it only for a case that matches. Absent: evidence for every case (the article, reviews).
    scope: dict[str, Any] | list[dict[str, Any]] | None = None  # a list: evidence for cases matching any of them


class SourcesFileSpec(_Strict):
    sources: dict[str, SourceSpec]


class EvidenceSpec(_Strict):
    measure: str
    ultrasound: str | None = None
    landmark: str | None = None
    note: str | None = None
    source: str
    locator: str
    # The points of reasoning this figure is the site's own evidence for; a rule naming a point
    # under `figures` cites the figure at this site. `when`: only for cases matching (a knee path).
    points: tuple[str, ...] = ()
    when: dict[str, Any] | None = None


class SiteSpec(_Strict):
    title: str
    defaults: dict[str, Any]
    why: str
    landmark_evidence: Literal["close", "gap", "unknown"]  # what the site's own figures show for blind vs guided
    # ... for ultrasound vs fluoroscopy ("unknown", which changes no rating, where a rule base before 1.3.0 did not say)
    us_fluoroscopy_evidence: Literal["close", "gap", "unknown"] = "unknown"
    # Fields the site's anatomy fixes: what-if never changes them (a hip cannot become superficial).
    fixed: tuple[str, ...] = ()
    evidence: tuple[EvidenceSpec, ...] = ()


class SitesFileSpec(_Strict):
    identity_fields: tuple[str, ...]
    sites: dict[str, SiteSpec]


class DefaultsFileSpec(_Strict):
    tissue: dict[str, dict[str, Any]]
    fields: dict[str, Any]


class ConstraintSpec(_Strict):
    id: str
    when: dict[str, Any] = Field(min_length=1)
    message: str


class ConstraintsFileSpec(_Strict):
    constraints: tuple[ConstraintSpec, ...]


class FactsFileSpec(_Strict):
    facts: dict[str, str]


class TieBreakSpec(_Strict):
    prefer: Modality
    over: tuple[Modality, ...] = Field(min_length=1)
    reason: str = Field(min_length=10)
    sources: tuple[CitationSpec, ...] = Field(min_length=1)
    figures: tuple[str, ...] = ()  # evidence points the reason quotes from the case's site


class PolicySpec(_Strict):
    id: str
    title: str
    version: int
    preference: tuple[Modality, ...]
    landmark_requires: str
    conclusion: str
    rationale: str
    sources: tuple[CitationSpec, ...] = Field(min_length=1)
    # Why one modality goes before another when both are rated usually appropriate.
    tie_breaks: tuple[TieBreakSpec, ...] = ()
    # The evidence points whose figure the bottom line quotes, first found first.
    summary_points: tuple[str, ...] = ()


class PolicyFileSpec(_Strict):
    policy: PolicySpec


class RulesetFileSpec(_Strict):
    name: str
    version: str
    rule_files: tuple[str, ...] = Field(min_length=1)
