"""Loading the rule base from `rules/`: safe YAML, a schema per file (`schemas`), cross-references
checked, the domain types (`domain`) built.

This is where a rule is *loaded*. It is compiled in `compile`, fired in `engine` and
explained in `explain`. Nothing here knows any clinical fact; it only reads them.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from guidance_rules.errors import RuleFileError
from guidance_rules.model import Citation, Modality
from guidance_rules.rulebase.conditions import CASE_FIELDS, Test, holds, parse
from guidance_rules.rulebase.domain import (
    OUTPUT_KINDS,
    Constraint,
    KnowledgeBase,
    Policy,
    Rule,
    Scope,
    Site,
    TieBreak,
)
from guidance_rules.rulebase.files import RuleFiles
from guidance_rules.rulebase.limits import check_fact_names, check_limits
from guidance_rules.rulebase.schemas import (
    CitationSpec,
    ConstraintsFileSpec,
    DefaultsFileSpec,
    EvidenceSpec,
    FactsFileSpec,
    PolicyFileSpec,
    RuleFileSpec,
    RulesetFileSpec,
    SitesFileSpec,
    SourcesFileSpec,
    SourceSpec,
)

RULE_FILES_WITHOUT_RULES = {
    "invariants.yaml",
    "sources.yaml",
    "sites.yaml",
    "defaults.yaml",
    "constraints.yaml",
    "facts.yaml",
    "policy.yaml",
    "ruleset.yaml",
    "fhir-mapping.yaml",
}  # read by guidance_rules.service.mapping


def default_rules_dir() -> Path:
    """The rule base shipped with the package (wheel), else the checkout's `rules/`."""
    package = Path(__file__).resolve().parent.parent
    packaged = package / "rules"
    return packaged if packaged.is_dir() else package.parent / "rules"


@functools.lru_cache(maxsize=1)
def default_knowledge() -> KnowledgeBase:
    return load(default_rules_dir())


def read_rule_file(directory: Path, name: str) -> Any:
    """One YAML file of a rule base, read as the loader reads every rule file (for data files that
    other layers own, such as the service's FHIR mapping)."""
    return RuleFiles(directory).data(name)


def check_schema(name: str, spec: type[BaseModel], data: Any) -> Any:
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
        raise RuleFileError(name, first["msg"], rule=rule, key=key) from None


def load(directory: Path | str, *, cache: bool = True) -> KnowledgeBase:
    """Load and check the whole rule base; raise RuleFileError naming file, rule and key.
    `cache=False` parses every file from YAML (the audit compares the two)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise RuleFileError(str(directory), "rule directory not found")
    files = RuleFiles(directory, cache=cache)
    files.read_all()  # every file in the rule base is checked as a file and counted in the digest
    ruleset = check_schema("ruleset.yaml", RulesetFileSpec, files.data("ruleset.yaml"))
    sources = check_schema("sources.yaml", SourcesFileSpec, files.data("sources.yaml")).sources
    facts = check_schema("facts.yaml", FactsFileSpec, files.data("facts.yaml")).facts
    check_fact_names(facts, CASE_FIELDS)
    sites_file = check_schema("sites.yaml", SitesFileSpec, files.data("sites.yaml"))
    defaults = check_schema("defaults.yaml", DefaultsFileSpec, files.data("defaults.yaml"))
    policy_spec = check_schema("policy.yaml", PolicyFileSpec, files.data("policy.yaml")).policy

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
        digest="",  # set once every file is read
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
            policy_spec.version,
            policy_spec.preference,
            policy_spec.landmark_requires,
            policy_spec.conclusion,
            policy_spec.rationale,
            tuple(citation("policy.yaml", policy_spec.id, "sources", s) for s in policy_spec.sources),
            tuple((s.source, s.locator) for s in policy_spec.sources),
            tuple(
                TieBreak(
                    t.prefer,
                    t.over,
                    t.reason,
                    tuple(citation("policy.yaml", policy_spec.id, f"tie_breaks.{i}", c) for c in t.sources),
                    t.figures,
                )
                for i, t in enumerate(policy_spec.tie_breaks)
            ),
            policy_spec.summary_points,
        ),
    )
    base = _with_scopes(base, sites_file)
    constraints = _load_constraints(files, base)
    listed = set(ruleset.rule_files)
    stray = [name for name in sorted(files.read) if name not in listed | RULE_FILES_WITHOUT_RULES]
    if stray:
        raise RuleFileError("ruleset.yaml", f"{', '.join(stray)} would be ignored; list it under rule_files", key="rule_files")
    rules = _load_rules(files, ruleset.rule_files, base, citation)
    check_limits(rules)  # what the engine cannot hold, said here rather than by the engine
    by_id = {rule.id: rule for rule in rules}
    kb = KnowledgeBase(
        **{
            **base.__dict__,
            "constraints": constraints,
            "rules": tuple(r for r in rules if r.status == "active"),
            "inactive": tuple(r for r in rules if r.status != "active"),
            "_by_id": by_id,
            "digest": files.digest(),
        }
    )
    files.save_parsed()
    derivation_levels(kb.rules, kb.facts)  # a cycle among derived facts is found at load time
    if policy_spec.landmark_requires not in facts:
        raise RuleFileError(
            "policy.yaml", f"'{policy_spec.landmark_requires}' is not declared in facts.yaml", rule=policy_spec.id, key="landmark_requires"
        )
    if set(policy_spec.preference) != set(Modality) or len(policy_spec.preference) != len(Modality):
        raise RuleFileError(
            "policy.yaml", f"preference must list each modality once: {', '.join(Modality)}", rule=policy_spec.id, key="preference"
        )
    _check_figures(kb)
    return kb


def _check_figures(kb: KnowledgeBase) -> None:
    """A rule's `figures` name points that some site's evidence gives (the policy's may name a point
    only one site gives, so a rule base without that site still loads). (That
    every step keeps a source that fits its case is proven over the case space by the audit.)"""
    points = {p for site in kb.sites.values() for row in site.evidence for p in row.points}
    for file, rid, figures in [(rule.file, rule.id, rule.figures) for rule in (*kb.rules, *kb.inactive)]:
        for point in figures:
            if point not in points:
                raise RuleFileError(
                    file, f"no site gives evidence for the point '{point}'; known: {', '.join(sorted(points))}", rule=rid, key="figures"
                )


def _with_scopes(base: KnowledgeBase, sites_file: SitesFileSpec) -> KnowledgeBase:
    """Parse each source's `scope` and each evidence row's `when` against the case vocabulary."""
    vocabulary = {name: s for name, s in base.vocabulary(output=False).items() if name not in base.facts}

    def tests(file: str, key: str, when: dict[str, Any] | None) -> tuple[Test, ...]:
        try:
            return parse(when, vocabulary)
        except KeyError as error:
            raise RuleFileError(file, error.args[1], key=f"{key}.{error.args[0]}") from None

    def scope(key: str, when: dict[str, Any] | list[dict[str, Any]]) -> Scope:
        alternatives = when if isinstance(when, list) else [when]
        return tuple(tests("sources.yaml", f"{key}.{i}", item) for i, item in enumerate(alternatives))

    scopes = {sid: scope(f"sources.{sid}.scope", spec.scope) for sid, spec in base.sources.items() if spec.scope}
    for sid, spec in base.sources.items():
        for pid, prop in spec.propositions.items():
            if prop.scope:
                scopes[scope_key(cite(base.sources, sid, pid))] = scope(f"sources.{sid}.propositions.{pid}.scope", prop.scope)
    sites = {
        key: Site(
            site.key,
            site.title,
            site.defaults,
            site.why,
            site.evidence,
            tuple(tests("sites.yaml", f"sites.{key}.evidence.{i}.when", row.when) for i, row in enumerate(site.evidence)),
            site.landmark_evidence,
            site.fixed,
            site.us_fluoroscopy_evidence,
        )
        for key, site in base.sites.items()
    }
    return KnowledgeBase(**{**base.__dict__, "scopes": scopes, "sites": sites})


def derivation_levels(rules: Sequence[Rule], facts: Mapping[str, str]) -> dict[str, int]:
    """Stratum of each derivation rule: one above the derived facts it reads. A cycle among
    derived facts makes negation unsound, so it is a load error (found here, at load time)."""
    derivers: dict[str, list[Rule]] = {}
    for rule in rules:
        if rule.kind == "derive" and rule.derive:
            derivers.setdefault(rule.derive, []).append(rule)
    fact_level: dict[str, int] = {}
    visiting: list[str] = []

    def level(fact: str) -> int:
        if fact in fact_level:
            return fact_level[fact]
        if fact in visiting:
            cycle = " -> ".join([*visiting[visiting.index(fact) :], fact])
            rule = derivers[fact][0]
            raise RuleFileError(rule.file, f"cycle among derived facts: {cycle}", rule=rule.id, key="when")
        visiting.append(fact)
        result = max((rule_level(rule) for rule in derivers.get(fact, [])), default=0)
        visiting.pop()
        fact_level[fact] = result
        return result

    def rule_level(rule: Rule) -> int:
        return 1 + max((level(f) for f in rule.reads if f in facts), default=0)

    return {rule.id: rule_level(rule) for rule in rules if rule.kind == "derive"}


def scope_key(citation: Citation) -> str:
    """Where a citation's scope is kept in `KnowledgeBase.scopes`: a whole source under its id, one
    proposition of a source under 'source#locator'."""
    return f"{citation.source}#{citation.locator}"


def scope_of(kb: KnowledgeBase, citation: Citation) -> Scope | None:
    """The cases this citation is evidence for (any alternative's tests hold); None: every case."""
    return kb.scopes.get(citation.source) or kb.scopes.get(scope_key(citation))


def in_scope(kb: KnowledgeBase, citation: Citation, values: Mapping[str, Any]) -> bool:
    """Whether the citation is evidence for a case with these resolved values."""
    scope = scope_of(kb, citation)
    return scope is None or any(holds(tests, values) for tests in scope)


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
        unknown = [f for f in site.fixed if f not in CASE_FIELDS]
        if unknown:
            raise RuleFileError(
                "sites.yaml", f"unknown field '{unknown[0]}'; valid fields: {', '.join(CASE_FIELDS)}", key=f"sites.{key}.fixed"
            )
        sites[key] = Site(
            key,
            site.title,
            dict(site.defaults),
            site.why,
            site.evidence,
            (),
            site.landmark_evidence,
            site.fixed,
            site.us_fluoroscopy_evidence,
        )
    return sites


def _load_constraints(files: RuleFiles, base: KnowledgeBase) -> tuple[Constraint, ...]:
    spec = check_schema("constraints.yaml", ConstraintsFileSpec, files.data("constraints.yaml"))
    out = []
    vocabulary = {name: s for name, s in base.vocabulary(output=False).items() if name not in base.facts}
    for item in spec.constraints:
        try:
            tests = parse(item.when, vocabulary)
        except KeyError as error:
            raise RuleFileError("constraints.yaml", error.args[1], rule=item.id, key=f"when.{error.args[0]}") from None
        out.append(Constraint(item.id, tests, item.message))
    return tuple(out)


def _load_rules(files: RuleFiles, names: tuple[str, ...], base: KnowledgeBase, citation: Any) -> list[Rule]:
    rules: list[Rule] = []
    seen: dict[str, str] = {}
    index = 0
    vocabularies = {output: base.vocabulary(output=output) for output in (False, True)}  # once: it grows with facts.yaml
    for name in names:
        spec = check_schema(name, RuleFileSpec, files.data(name))
        for item in spec.rules:
            if item.id in seen:
                raise RuleFileError(name, f"duplicate rule id (also in {seen[item.id]})", rule=item.id, key="id")
            seen[item.id] = name
            kinds = [k for k in ("derive", "rate", *OUTPUT_KINDS) if getattr(item.then, k) is not None]
            if len(kinds) != 1:
                raise RuleFileError(
                    name, "'then' must have exactly one of derive, rate, documentation, caution, question", rule=item.id, key="then"
                )
            kind = kinds[0]
            if kind == "derive" and item.then.derive not in base.facts:
                raise RuleFileError(
                    name,
                    f"'{item.then.derive}' is not declared in facts.yaml; declared: {', '.join(base.facts)}",
                    rule=item.id,
                    key="then.derive",
                )
            if kind == "rate" and not item.then.rate:
                raise RuleFileError(name, "'rate' must rate at least one modality", rule=item.id, key="then.rate")
            try:
                tests = parse(item.when, vocabularies[kind in OUTPUT_KINDS])
            except KeyError as error:
                raise RuleFileError(name, error.args[1], rule=item.id, key=f"when.{error.args[0]}") from None
            cites = tuple(citation(name, item.id, f"sources.{i}", s) for i, s in enumerate(item.sources))
            text = getattr(item.then, kind) if kind in OUTPUT_KINDS else None
            rules.append(
                Rule(
                    id=item.id,
                    title=item.title,
                    version=item.version,
                    status=item.status,
                    file=name,
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
                    figures=item.figures,
                    bottom_line=item.bottom_line,
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
