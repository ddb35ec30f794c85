"""The rule base as the other layers see it: rules, sites, constraints, the policy and the
knowledge base, built and cross-checked by `load` from the files `schemas` describes."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from guidance_rules.model import Category, Citation, Modality
from guidance_rules.rulebase.conditions import BOOL, CASE_FIELDS, EQUIPMENT_FIELD, MODALITY_FIELD, FieldSpec, Test
from guidance_rules.rulebase.schemas import (
    EvidenceSpec,
    SourceSpec,
)

ARTICLE = "article"
OUTPUT_KINDS = ("documentation", "caution", "question")
# Fields a site record sets from its own evidence, which rules may read like case fields (a case
# without a site has no such evidence: 'unknown'). See sites.yaml for what each value means.
EVIDENCE_VALUES = ("close", "gap", "unknown")
SITE_FIELDS: dict[str, FieldSpec] = {
    "landmark_evidence": FieldSpec("landmark_evidence", EVIDENCE_VALUES),
    "us_fluoroscopy_evidence": FieldSpec("us_fluoroscopy_evidence", EVIDENCE_VALUES),
}
NO_SITE_EVIDENCE = dict.fromkeys(SITE_FIELDS, "unknown")


@dataclass(frozen=True, eq=False)
class Rule:
    """A rule ready to compile: conditions parsed, sources expanded. Compared by identity."""

    id: str
    title: str
    version: int
    status: str
    file: str
    index: int
    tests: tuple[Test, ...]
    kind: str  # derive, rate, documentation, caution, question
    derive: str | None
    rate: Mapping[Modality, Category]
    text: str | None
    overrides: tuple[str, ...]
    conclusion: str
    rationale: str
    sources: tuple[Citation, ...]
    cited: tuple[tuple[str, str], ...]  # (source id, locator as written) for the audit
    figures: tuple[str, ...]  # evidence points this step cites from the case's site record
    bottom_line: bool
    fires: tuple[dict[str, Any], ...]
    silent: tuple[dict[str, Any], ...]

    @functools.cached_property
    def reads(self) -> tuple[str, ...]:
        return tuple(test.field for test in self.tests)

    @property
    def is_output(self) -> bool:
        return self.kind in OUTPUT_KINDS


Scope = tuple[tuple[Test, ...], ...]  # the cases a citation is evidence for: those matching any of these


@dataclass(frozen=True)
class Constraint:
    id: str
    tests: tuple[Test, ...]
    message: str


@dataclass(frozen=True)
class Site:
    key: str
    title: str
    defaults: Mapping[str, Any]
    why: str
    evidence: tuple[EvidenceSpec, ...]
    evidence_tests: tuple[tuple[Test, ...], ...] = ()  # each evidence row's `when`, parsed (empty: always)
    landmark_evidence: str = "unknown"
    fixed: tuple[str, ...] = ()
    us_fluoroscopy_evidence: str = "unknown"

    @property
    def evidence_values(self) -> dict[str, Any]:
        """The values of SITE_FIELDS this record gives rules to read."""
        return {name: getattr(self, name) for name in SITE_FIELDS}


@dataclass(frozen=True)
class TieBreak:
    prefer: Modality
    over: tuple[Modality, ...]
    reason: str
    sources: tuple[Citation, ...]
    figures: tuple[str, ...] = ()


@dataclass(frozen=True)
class Policy:
    id: str
    title: str
    version: int
    preference: tuple[Modality, ...]
    landmark_requires: str  # the derived fact without which landmark may never be recommended
    conclusion: str
    rationale: str
    sources: tuple[Citation, ...]
    cited: tuple[tuple[str, str], ...]
    tie_breaks: tuple[TieBreak, ...] = ()
    summary_points: tuple[str, ...] = ()


@dataclass(frozen=True)
class KnowledgeBase:
    """Everything in `rules/`, checked and cross-referenced."""

    directory: Path
    name: str
    version: str
    digest: str
    sources: Mapping[str, SourceSpec]
    sites: Mapping[str, Site]
    identity_fields: tuple[str, ...]
    tissue_defaults: Mapping[str, Mapping[str, Any]]
    field_defaults: Mapping[str, Any]
    constraints: tuple[Constraint, ...]
    facts: Mapping[str, str]
    rules: tuple[Rule, ...]  # active rules only, in file order
    inactive: tuple[Rule, ...]
    policy: Policy
    scopes: Mapping[str, Scope] = field(default_factory=dict)  # source (or source#locator) -> the cases it is evidence for
    _by_id: dict[str, Rule] = field(default_factory=dict, repr=False, compare=False)

    def rule(self, rule_id: str) -> Rule:
        return self._by_id[rule_id]

    def site_evidence(self, site: str) -> dict[str, Any]:
        """The values of SITE_FIELDS for a case at this site ('' : none given)."""
        found = self.sites.get(site)
        return found.evidence_values if found is not None else dict(NO_SITE_EVIDENCE)

    def propositions(self) -> tuple[str, ...]:
        return tuple(self.sources[ARTICLE].propositions) if ARTICLE in self.sources else ()

    def vocabulary(self, output: bool) -> dict[str, FieldSpec]:
        """Fields a rule may test. Only output rules may see equipment or the chosen modality,
        so available equipment can never change the recommendation."""
        fields = {name: spec for name, spec in CASE_FIELDS.items() if output or name != EQUIPMENT_FIELD}
        fields["site"] = FieldSpec("site", (*self.sites, ""))
        fields.update(SITE_FIELDS)
        fields.update({name: FieldSpec(name, BOOL) for name in self.facts})
        if output:
            fields[MODALITY_FIELD.name] = MODALITY_FIELD
        return fields
