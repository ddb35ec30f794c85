"""Loading the rule base from `rules/`: safe YAML, a schema per file, cross-references checked.

This is where a rule is *loaded*. It is compiled in `compile`, fired in `engine` and
explained in `explain`. Nothing here knows any clinical fact; it only reads them.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .conditions import BOOL, CASE_FIELDS, EQUIPMENT_FIELD, MODALITY_FIELD, FieldSpec, Test, parse
from .errors import RuleFileError
from .model import Category, Citation, Modality

ARTICLE = "article"
RULE_FILES_WITHOUT_RULES = {
    "invariants.yaml",
    "sources.yaml",
    "sites.yaml",
    "defaults.yaml",
    "constraints.yaml",
    "facts.yaml",
    "policy.yaml",
    "ruleset.yaml",
}
OUTPUT_KINDS = ("documentation", "caution", "question")


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
    examples: ExamplesSpec


class RuleFileSpec(_Strict):
    rules: tuple[RuleSpec, ...]


class PropositionSpec(_Strict):
    section: str
    summary: str


class SourceSpec(_Strict):
    title: str
    kind: str
    propositions: dict[str, PropositionSpec] = {}


class SourcesFileSpec(_Strict):
    sources: dict[str, SourceSpec]


class EvidenceSpec(_Strict):
    measure: str
    ultrasound: str | None = None
    landmark: str | None = None
    note: str | None = None
    source: str
    locator: str


class SiteSpec(_Strict):
    title: str
    defaults: dict[str, Any]
    why: str
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


class PolicySpec(_Strict):
    id: str
    title: str
    version: int
    preference: tuple[Modality, ...]
    landmark_requires: str
    conclusion: str
    rationale: str
    sources: tuple[CitationSpec, ...] = Field(min_length=1)


class PolicyFileSpec(_Strict):
    policy: PolicySpec


class RulesetFileSpec(_Strict):
    name: str
    version: str
    rule_files: tuple[str, ...] = Field(min_length=1)


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
    fires: tuple[dict[str, Any], ...]
    silent: tuple[dict[str, Any], ...]

    @functools.cached_property
    def reads(self) -> tuple[str, ...]:
        return tuple(test.field for test in self.tests)

    @property
    def is_output(self) -> bool:
        return self.kind in OUTPUT_KINDS


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


@dataclass(frozen=True)
class Policy:
    id: str
    title: str
    preference: tuple[Modality, ...]
    landmark_requires: str  # the derived fact without which landmark may never be recommended
    conclusion: str
    rationale: str
    sources: tuple[Citation, ...]
    cited: tuple[tuple[str, str], ...]


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
    _by_id: dict[str, Rule] = field(default_factory=dict, repr=False, compare=False)

    def rule(self, rule_id: str) -> Rule:
        return self._by_id[rule_id]

    def check_site(self, value: str) -> str:
        """Return the site key, or raise ValueError with the closest valid key."""
        if value in self.sites:
            return value
        close = difflib.get_close_matches(value, list(self.sites), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise ValueError(f"unknown site '{value}'{hint} Valid sites: {', '.join(self.sites)}")

    def propositions(self) -> tuple[str, ...]:
        return tuple(self.sources[ARTICLE].propositions) if ARTICLE in self.sources else ()

    def vocabulary(self, output: bool) -> dict[str, FieldSpec]:
        """Fields a rule may test. Only output rules may see equipment or the chosen modality,
        so available equipment can never change the recommendation."""
        fields = {name: spec for name, spec in CASE_FIELDS.items() if output or name != EQUIPMENT_FIELD}
        fields["site"] = FieldSpec("site", (*self.sites, ""))
        fields.update({name: FieldSpec(name, BOOL) for name in self.facts})
        if output:
            fields[MODALITY_FIELD.name] = MODALITY_FIELD
        return fields


def default_rules_dir() -> Path:
    """The rule base shipped with the package (wheel), else the checkout's `rules/`."""
    here = Path(__file__).resolve().parent
    packaged = here / "rules"
    return packaged if packaged.is_dir() else here.parent / "rules"


@functools.lru_cache(maxsize=1)
def default_knowledge() -> KnowledgeBase:
    return load(default_rules_dir())


def knowledge_from_context(context: Any) -> KnowledgeBase:
    found = context.get("knowledge") if isinstance(context, Mapping) else None
    return found if isinstance(found, KnowledgeBase) else default_knowledge()


# libyaml's safe loader when PyYAML has it (about 10x faster); both construct plain data only.
_SAFE_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _read(path: Path) -> Any:
    try:
        with path.open("rb") as handle:
            return yaml.load(handle, Loader=_SAFE_LOADER)
    except FileNotFoundError:
        raise RuleFileError(path.name, "file is missing from the rule base") from None
    except yaml.YAMLError as error:
        raise RuleFileError(path.name, f"not valid YAML: {error}") from None


def _schema(path: Path, spec: type[BaseModel], data: Any) -> Any:
    """Validate one file against its schema; the error names the rule (by id) and the key."""
    try:
        return spec.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        loc = list(first["loc"])
        rule = None
        if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int) and isinstance(data, Mapping):
            raw = data["rules"][loc[1]]
            rule = str(raw.get("id", f"#{loc[1] + 1}")) if isinstance(raw, Mapping) else f"#{loc[1] + 1}"
            loc = loc[2:]
        key = ".".join(str(part) for part in loc) or None
        raise RuleFileError(path.name, first["msg"], rule=rule, key=key) from None


def digest(directory: Path) -> str:
    """A hash of every rule file's name and bytes: changes whenever any rule file changes."""
    sha = hashlib.sha256()
    for path in sorted(directory.glob("*.yaml")):
        sha.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return "sha256:" + sha.hexdigest()


def load(directory: Path | str) -> KnowledgeBase:
    """Load and check the whole rule base; raise RuleFileError naming file, rule and key."""
    directory = Path(directory)
    if not directory.is_dir():
        raise RuleFileError(str(directory), "rule directory not found")
    ruleset = _schema(directory / "ruleset.yaml", RulesetFileSpec, _read(directory / "ruleset.yaml"))
    sources = _schema(directory / "sources.yaml", SourcesFileSpec, _read(directory / "sources.yaml")).sources
    facts = _schema(directory / "facts.yaml", FactsFileSpec, _read(directory / "facts.yaml")).facts
    sites_file = _schema(directory / "sites.yaml", SitesFileSpec, _read(directory / "sites.yaml"))
    defaults = _schema(directory / "defaults.yaml", DefaultsFileSpec, _read(directory / "defaults.yaml"))
    policy_spec = _schema(directory / "policy.yaml", PolicyFileSpec, _read(directory / "policy.yaml")).policy

    def citation(file: str, rule: str | None, key: str, spec: CitationSpec | EvidenceSpec) -> Citation:
        if spec.source not in sources:
            raise RuleFileError(file, f"unknown source '{spec.source}'; add it to sources.yaml", rule=rule, key=key)
        props = sources[spec.source].propositions
        if props and spec.locator not in props:
            raise RuleFileError(
                file, f"'{spec.locator}' is not a proposition of '{spec.source}'; valid: {', '.join(props)}", rule=rule, key=key
            )
        return cite(sources, spec.source, spec.locator)

    sites = _load_sites(sites_file, citation)
    for tissue, values in defaults.tissue.items():
        _check_values("defaults.yaml", f"tissue.{tissue}", values)
    _check_values("defaults.yaml", "fields", defaults.fields)

    base = KnowledgeBase(
        directory=directory,
        name=ruleset.name,
        version=ruleset.version,
        digest=digest(directory),
        sources=sources,
        sites=sites,
        identity_fields=sites_file.identity_fields,
        tissue_defaults=defaults.tissue,
        field_defaults=defaults.fields,
        constraints=(),
        facts=facts,
        rules=(),
        inactive=(),
        policy=Policy(
            policy_spec.id,
            policy_spec.title,
            policy_spec.preference,
            policy_spec.landmark_requires,
            policy_spec.conclusion,
            policy_spec.rationale,
            tuple(citation("policy.yaml", policy_spec.id, "sources", s) for s in policy_spec.sources),
            tuple((s.source, s.locator) for s in policy_spec.sources),
        ),
    )
    constraints = _load_constraints(directory, base)
    listed = set(ruleset.rule_files)
    stray = sorted(p.name for p in directory.glob("*.yaml") if p.name not in listed | RULE_FILES_WITHOUT_RULES)
    if stray:
        raise RuleFileError("ruleset.yaml", f"{', '.join(stray)} would be ignored; list it under rule_files", key="rule_files")
    rules = _load_rules(directory, ruleset.rule_files, base, citation)
    by_id = {rule.id: rule for rule in rules}
    kb = KnowledgeBase(
        **{
            **base.__dict__,
            "constraints": constraints,
            "rules": tuple(r for r in rules if r.status == "active"),
            "inactive": tuple(r for r in rules if r.status != "active"),
            "_by_id": by_id,
        }
    )
    if policy_spec.landmark_requires not in facts:
        raise RuleFileError(
            "policy.yaml", f"'{policy_spec.landmark_requires}' is not declared in facts.yaml", rule=policy_spec.id, key="landmark_requires"
        )
    if set(policy_spec.preference) != set(Modality) or len(policy_spec.preference) != len(Modality):
        raise RuleFileError(
            "policy.yaml", f"preference must list each modality once: {', '.join(Modality)}", rule=policy_spec.id, key="preference"
        )
    return kb


def cite(sources: Mapping[str, SourceSpec], source: str, locator: str) -> Citation:
    """A citation for output: an article proposition id becomes "section - id"."""
    props = sources[source].propositions
    if locator in props:
        return Citation(source=source, locator=f"{props[locator].section} - {locator}")
    return Citation(source=source, locator=locator)


def _check_values(file: str, where: str, values: Mapping[str, Any]) -> None:
    """Default values must be values the case itself could hold."""
    for name, value in values.items():
        spec = CASE_FIELDS.get(name)
        if spec is None:
            raise RuleFileError(file, f"unknown field '{name}'; valid fields: {', '.join(CASE_FIELDS)}", key=f"{where}.{name}")
        items = value if spec.is_list and isinstance(value, list) else [value]
        for item in items:
            if not any(item == v and type(item) is type(v) for v in spec.values):
                raise RuleFileError(
                    file, f"'{item}' is not a value of {name}; valid: {', '.join(map(str, spec.values))}", key=f"{where}.{name}"
                )


def _load_sites(spec: SitesFileSpec, citation: Any) -> dict[str, Site]:
    sites = {}
    for key, site in spec.sites.items():
        _check_values("sites.yaml", f"sites.{key}.defaults", site.defaults)
        for i, item in enumerate(site.evidence):
            citation("sites.yaml", None, f"sites.{key}.evidence.{i}", item)
        sites[key] = Site(key, site.title, dict(site.defaults), site.why, site.evidence)
    return sites


def _load_constraints(directory: Path, base: KnowledgeBase) -> tuple[Constraint, ...]:
    spec = _schema(directory / "constraints.yaml", ConstraintsFileSpec, _read(directory / "constraints.yaml"))
    out = []
    vocabulary = {name: s for name, s in base.vocabulary(output=False).items() if name not in base.facts}
    for item in spec.constraints:
        try:
            tests = parse(item.when, vocabulary)
        except KeyError as error:
            raise RuleFileError("constraints.yaml", error.args[1], rule=item.id, key=f"when.{error.args[0]}") from None
        out.append(Constraint(item.id, tests, item.message))
    return tuple(out)


def _load_rules(directory: Path, files: tuple[str, ...], base: KnowledgeBase, citation: Any) -> list[Rule]:
    rules: list[Rule] = []
    seen: dict[str, str] = {}
    index = 0
    for name in files:
        path = directory / name
        spec = _schema(path, RuleFileSpec, _read(path))
        for item in spec.rules:
            if item.id in seen:
                raise RuleFileError(path.name, f"duplicate rule id (also in {seen[item.id]})", rule=item.id, key="id")
            seen[item.id] = path.name
            kinds = [k for k in ("derive", "rate", *OUTPUT_KINDS) if getattr(item.then, k) is not None]
            if len(kinds) != 1:
                raise RuleFileError(
                    path.name, "'then' must have exactly one of derive, rate, documentation, caution, question", rule=item.id, key="then"
                )
            kind = kinds[0]
            if kind == "derive" and item.then.derive not in base.facts:
                raise RuleFileError(
                    path.name,
                    f"'{item.then.derive}' is not declared in facts.yaml; declared: {', '.join(base.facts)}",
                    rule=item.id,
                    key="then.derive",
                )
            if kind == "rate" and not item.then.rate:
                raise RuleFileError(path.name, "'rate' must rate at least one modality", rule=item.id, key="then.rate")
            try:
                tests = parse(item.when, base.vocabulary(output=kind in OUTPUT_KINDS))
            except KeyError as error:
                raise RuleFileError(path.name, error.args[1], rule=item.id, key=f"when.{error.args[0]}") from None
            cites = tuple(citation(path.name, item.id, f"sources.{i}", s) for i, s in enumerate(item.sources))
            text = getattr(item.then, kind) if kind in OUTPUT_KINDS else None
            rules.append(
                Rule(
                    id=item.id,
                    title=item.title,
                    version=item.version,
                    status=item.status,
                    file=path.name,
                    index=index,
                    tests=tests,
                    kind=kind,
                    derive=item.then.derive,
                    rate=dict(item.then.rate or {}),
                    text=text,
                    overrides=item.overrides,
                    conclusion=item.conclusion,
                    rationale=item.rationale,
                    sources=cites,
                    cited=tuple((s.source, s.locator) for s in item.sources),
                    fires=item.examples.fires,
                    silent=item.examples.silent,
                )
            )
            index += 1
    known = {rule.id: rule for rule in rules}
    for rule in rules:
        for other in rule.overrides:
            if other not in known:
                raise RuleFileError(rule.file, f"overrides unknown rule '{other}'", rule=rule.id, key="overrides")
            if rule.kind != "rate" or known[other].kind != "rate":
                raise RuleFileError(rule.file, "only rating rules may override rating rules", rule=rule.id, key="overrides")
    return rules
