"""The FHIR -> Case mapping, loaded from `rules/fhir-mapping.yaml` with safe YAML.

Only data lives in the file (codes, their sites, injectates, guidance and sources); this module
checks it against the rule base (every site a catalogue key, every source cited) and indexes it.
No web or FHIR imports here, so the mapping can be checked without the service extra.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from guidance_rules.errors import RuleFileError
from guidance_rules.model import Injectate, Modality, Variance
from guidance_rules.rulebase.domain import KnowledgeBase
from guidance_rules.rulebase.load import read_rule_file

FILE = "fhir-mapping.yaml"
_SAFE_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CodeEntry(_Strict):
    system: str
    code: str
    display: str
    source: str


class BodySite(CodeEntry):
    site: str
    side: Literal["left", "right"] | None = None  # a lateralised concept (Entire right knee joint) says its side itself


class RegionCode(CodeEntry):
    note: str


class Procedure(CodeEntry):
    guidance: Modality | None  # None: the code covers whatever guidance is used and names none
    family: str
    site: str | None = None
    injectate: Injectate | None = None  # where the code's descriptor names the injectate


class Addon(CodeEntry):
    guidance: Modality


class LevelAddon(CodeEntry):
    """An additional level of a spinal injection (64484 beside 64483): read with the order it adds
    to, never a card of its own."""

    adds_to: tuple[str, ...] = Field(min_length=1)  # the first-level procedure codes it adds a level to
    level: str  # its row under level_variants: the code of each guidance


class UnverifiedCode(_Strict):
    """A code EHRs send that is deliberately not mapped, and why."""

    system: str
    code: str
    kind: Literal["procedure", "medication", "body_site", "guidance"]  # guidance: imaging this tool does not rate (CT)
    why: str


class Medication(CodeEntry):
    injectate: Injectate
    tty: Literal["IN", "PIN", "MIN", "SCD", "SBD"] | None = None  # RxNorm term type, for RxNorm codes


class CombinedInjectates(_Strict):
    """Which injectate a mixture is read as: the first of `precedence` among those ordered."""

    precedence: tuple[Injectate, ...]
    source: str

    def first(self, ordered: set[Injectate]) -> Injectate:
        return next(i for i in self.precedence if i in ordered)


class LateralityCode(CodeEntry):
    """A laterality qualifier beside a body-site code: it never changes the site, but a prior
    surgery on the other side is not surgery at the injected site."""

    side: Literal["left", "right", "both"]


class VarianceCode(CodeEntry):
    variance: Variance


class VarianceObservation(VarianceCode):
    unit: str
    at_least: float


class UnreadableHistory(_Strict):
    """The variance a part of the patient's record stands for when the service cannot read it (a
    prefetch not supplied or failed, a resource that does not validate, a completed Procedure
    with no category or at a body site not mapped): never "no history"."""

    conditions: Variance
    observations: Variance
    procedures: Variance
    source: str


class VarianceSpec(_Strict):
    conditions: tuple[VarianceCode, ...] = ()
    observations: tuple[VarianceObservation, ...] = ()
    surgery_categories: tuple[CodeEntry, ...] = ()
    unreadable: UnreadableHistory


class ReasonCode(_Strict):
    code: str
    display: str


class OverrideReasons(_Strict):
    system: str
    codes: tuple[ReasonCode, ...] = Field(min_length=1)


class JointSizes(_Strict):
    """Which arthrocentesis family (joint size) each site belongs to, by the CPT descriptors."""

    families: tuple[str, ...]
    sites: dict[str, str]
    source: str

    def family_for(self, ordered: str, site: str | None) -> str:
        """The family the order should have: the site's, where the order is one of these families."""
        if ordered in self.families and site in self.sites:
            return self.sites[site]
        return ordered


class LocalSystems(_Strict):
    site: str
    injectate: str


class SourceSpec(_Strict):
    title: str
    where: str


class MappingFile(_Strict):
    version: int
    local_systems: LocalSystems
    body_sites: tuple[BodySite, ...]
    region_codes: tuple[RegionCode, ...] = ()
    laterality: tuple[LateralityCode, ...] = ()
    unverified_sites: tuple[str, ...] = ()
    procedure_sites: tuple[str, ...] = ()
    procedures: tuple[Procedure, ...]
    guidance_addons: tuple[Addon, ...] = ()
    level_addons: tuple[LevelAddon, ...] = ()
    level_variants: dict[str, dict[Modality, str]] = Field(default_factory=dict)
    unverified_codes: tuple[UnverifiedCode, ...] = ()
    variants: dict[str, dict[Modality, tuple[str, ...]]]
    keep_code_families: tuple[str, ...] = ()
    joint_sizes: JointSizes
    medications: tuple[Medication, ...] = ()
    combined_injectates: CombinedInjectates
    variance: VarianceSpec
    override_reasons: OverrideReasons
    sources: dict[str, SourceSpec]


Key = tuple[str, str]  # (system, code)


@dataclass(frozen=True)
class Mapping:
    """The checked mapping with lookup tables by (system, code)."""

    spec: MappingFile
    digest: str
    body_sites: dict[Key, BodySite]
    regions: dict[Key, RegionCode]
    laterality: dict[Key, LateralityCode]
    procedures: dict[Key, Procedure]
    addons: dict[Key, Addon]
    levels: dict[Key, LevelAddon]
    medications: dict[Key, Medication]
    unverified: dict[Key, UnverifiedCode]
    conditions: dict[Key, VarianceCode]
    observations: dict[Key, VarianceObservation]
    surgery: frozenset[Key]
    sites: frozenset[str]

    def prefetch(self) -> dict[str, str]:
        """The prefetch templates of discovery: the patient's record the variance rows can read.

        The observation codes come from `variance.observations`, so a code added there is asked
        for without a change here; the reader keeps the latest value of each code."""
        codes = ",".join(f"{o.system}|{o.code}" for o in self.spec.variance.observations)
        count = "&_count=1" if len(self.spec.variance.observations) == 1 else ""
        return {
            "conditions": "Condition?patient={{context.patientId}}&clinical-status=active",
            "observations": f"Observation?patient={{{{context.patientId}}}}&code={codes}&_sort=-date{count}",
            "procedures": "Procedure?patient={{context.patientId}}&status=completed",
        }

    def code_of(self, system: str, code: str) -> Procedure | Addon | None:
        key = (system, code)
        return self.procedures.get(key) or self.addons.get(key)

    def level_guidance(self, level: LevelAddon) -> Modality:
        """The guidance a level code carries: the column of its row in level_variants."""
        return next(m for m, code in self.spec.level_variants[level.level].items() if code == level.code)

    def procedure_by_code(self, code: str) -> Procedure | Addon | LevelAddon:
        """The procedure, add-on or level entry for a code named in `variants` or `level_variants`
        (one code system there)."""
        entries: tuple[Procedure | Addon | LevelAddon, ...] = (*self.spec.procedures, *self.spec.guidance_addons, *self.spec.level_addons)
        for entry in entries:
            if entry.code == code:
                return entry
        raise KeyError(code)


def _index(entries: tuple[Any, ...], file_key: str) -> dict[Key, Any]:
    out: dict[Key, Any] = {}
    for entry in entries:
        key = (entry.system, entry.code)
        if key in out:
            raise RuleFileError(FILE, f"{entry.system}|{entry.code} is listed twice", key=file_key)
        out[key] = entry
    return out


def _check_levels(spec: MappingFile) -> None:
    """Each level code adds to a listed first-level code and has a column in its level_variants
    row; each row names only level codes."""
    first_level = {p.code for p in spec.procedures}
    level_codes = {e.code for e in spec.level_addons}
    for i, level in enumerate(spec.level_addons):
        unknown = [c for c in level.adds_to if c not in first_level]
        if unknown:
            raise RuleFileError(FILE, f"adds_to {', '.join(unknown)}: not listed under procedures", key=f"level_addons.{i}.adds_to")
        row = spec.level_variants.get(level.level)
        if row is None or level.code not in row.values():
            raise RuleFileError(
                FILE,
                f"code {level.code} has no column in level_variants.{level.level}; give the guidance it carries",
                key=f"level_addons.{i}",
            )
    for name, row in spec.level_variants.items():
        for modality, code in row.items():
            if code not in level_codes:
                raise RuleFileError(FILE, f"code '{code}' is not listed under level_addons", key=f"level_variants.{name}.{modality}")


def load_mapping(knowledge: KnowledgeBase, directory: Path | None = None) -> Mapping:
    """Read and check the mapping beside the rule base; RuleFileError names the key at fault."""
    folder = directory or knowledge.directory
    if not (folder / FILE).exists():
        raise RuleFileError(FILE, f"missing from {folder}; the service needs it to read FHIR orders")
    raw = read_rule_file(folder, FILE)  # the rule base's safe reading: no aliases, no duplicate keys, plain files
    try:
        spec = MappingFile.model_validate(raw)
    except ValidationError as error:
        first = error.errors()[0]
        raise RuleFileError(FILE, first["msg"], key=".".join(str(p) for p in first["loc"])) from None
    catalogue = set(knowledge.sites)
    for i, body in enumerate(spec.body_sites):
        if body.site not in catalogue:
            raise RuleFileError(
                FILE, f"'{body.site}' is not a catalogue site; valid: {', '.join(knowledge.sites)}", key=f"body_sites.{i}.site"
            )
    for i, proc in enumerate(spec.procedures):
        if proc.site is not None and proc.site not in catalogue:
            raise RuleFileError(FILE, f"'{proc.site}' is not a catalogue site", key=f"procedures.{i}.site")
        if proc.family not in spec.variants:
            raise RuleFileError(FILE, f"family '{proc.family}' has no row under variants", key=f"procedures.{i}.family")
    for key in ("unverified_sites", "procedure_sites"):
        for name in getattr(spec, key):
            if name not in catalogue:
                raise RuleFileError(FILE, f"'{name}' is not a catalogue site", key=key)
    named = {p.site for p in spec.procedures}
    for name in spec.procedure_sites:
        if name not in named:
            raise RuleFileError(FILE, f"'{name}' is reached by its procedure code, but no procedure names it", key="procedure_sites")
    sizes = spec.joint_sizes
    for site, family in sizes.sites.items():
        if site not in catalogue:
            raise RuleFileError(FILE, f"'{site}' is not a catalogue site", key="joint_sizes.sites")
        if family not in sizes.families:
            raise RuleFileError(FILE, f"'{family}' for {site} is not one of {', '.join(sizes.families)}", key="joint_sizes.sites")
    for family in sizes.families:
        if family not in spec.variants:
            raise RuleFileError(FILE, f"family '{family}' has no row under variants", key="joint_sizes.families")
    order = spec.combined_injectates.precedence
    if sorted(order) != sorted(Injectate):
        raise RuleFileError(
            FILE,
            f"precedence lists {', '.join(order)}; it must list each injectate once: {', '.join(Injectate)}",
            key="combined_injectates.precedence",
        )
    cited_by = (
        ("combined_injectates", spec.combined_injectates.source),
        ("joint_sizes", sizes.source),
        ("variance.unreadable", spec.variance.unreadable.source),
    )
    for key, cited in cited_by:
        if cited not in spec.sources:
            raise RuleFileError(FILE, f"unknown source '{cited}'; add it under sources", key=key)
    known_codes = {e.code for e in (*spec.procedures, *spec.guidance_addons)}
    for family, row in spec.variants.items():
        for modality, codes in row.items():
            for code in codes:
                if code not in known_codes:
                    raise RuleFileError(
                        FILE, f"code '{code}' is not listed under procedures or guidance_addons", key=f"variants.{family}.{modality}"
                    )
    _check_levels(spec)
    every: list[tuple[str, CodeEntry]] = [
        *(("body_sites", e) for e in spec.body_sites),
        *(("region_codes", e) for e in spec.region_codes),
        *(("laterality", e) for e in spec.laterality),
        *(("procedures", e) for e in spec.procedures),
        *(("guidance_addons", e) for e in spec.guidance_addons),
        *(("level_addons", e) for e in spec.level_addons),
        *(("medications", e) for e in spec.medications),
        *(("variance", e) for e in (*spec.variance.conditions, *spec.variance.observations, *spec.variance.surgery_categories)),
    ]
    for where, entry in every:
        if entry.source not in spec.sources:
            raise RuleFileError(FILE, f"unknown source '{entry.source}' for code {entry.code}; add it under sources", key=where)
    mapped = {(e.system, e.code) for _, e in every}
    for i, unverified in enumerate(spec.unverified_codes):
        if (unverified.system, unverified.code) in mapped:
            raise RuleFileError(
                FILE,
                f"{unverified.system}|{unverified.code} is listed as not mapped but is mapped; remove one",
                key=f"unverified_codes.{i}",
            )
    return Mapping(
        spec=spec,
        digest=knowledge.digest,  # the rule base digest covers this file (every *.yaml in rules/)
        body_sites=_index(spec.body_sites, "body_sites"),
        regions=_index(spec.region_codes, "region_codes"),
        laterality=_index(spec.laterality, "laterality"),
        procedures=_index(spec.procedures, "procedures"),
        addons=_index(spec.guidance_addons, "guidance_addons"),
        levels=_index(spec.level_addons, "level_addons"),
        unverified={(u.system, u.code): u for u in spec.unverified_codes},
        medications=_index(spec.medications, "medications"),
        conditions=_index(spec.variance.conditions, "variance.conditions"),
        observations=_index(spec.variance.observations, "variance.observations"),
        surgery=frozenset((e.system, e.code) for e in spec.variance.surgery_categories),
        sites=frozenset(catalogue),
    )
