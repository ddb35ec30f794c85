"""Reading FHIR R4 draft orders and the patient's record into Cases, with the mapping's data.

Resources are validated with `fhir.resources` (R4B models, pydantic v2) one by one, never read as
loose dictionaries: a resource that does not validate is named on the cards, not a reason to
refuse the whole request (only a request that is itself malformed is refused). What the order
does not say is left to the library's own resolution (listed as assumptions); what the mapping
cannot read (no body site, say) becomes a problem, never a guess. What the patient's record
holds but the service cannot read is resolved as `rules/fhir-mapping.yaml` variance.unreadable
says (conservatively), never as "no history".
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass, field
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.codeableconcept import CodeableConcept
from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.medication import Medication
from fhir.resources.R4B.medicationrequest import MedicationRequest
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.procedure import Procedure as FhirProcedure
from fhir.resources.R4B.resource import Resource
from fhir.resources.R4B.servicerequest import ServiceRequest
from pydantic import ValidationError

from guidance_rules.model import Injectate, Modality, Variance

from .errors import BadRequest
from .mapping import Addon, LevelAddon, Mapping, Procedure
from .said import Said

INACTIVE_CONDITION = {"inactive", "remission", "resolved"}
NOT_CONFIRMED = {"refuted", "entered-in-error"}
FINAL_OBSERVATION = {"final", "amended", "corrected"}
VOID_OBSERVATION = {"entered-in-error", "cancelled"}  # never a value: skipped, not doubted
RECORD = {"conditions": Condition, "observations": Observation, "procedures": FhirProcedure}


def _resource_type(kind: object) -> bool:
    """Whether the R4B models know `kind` as a resource (not a data type or a backbone element)."""
    if not isinstance(kind, str) or not kind.isidentifier():
        return False
    try:
        return issubclass(get_fhir_model_class(kind), Resource)
    except ValueError:
        return False


@dataclass(frozen=True)
class Unreadable:
    """A resource that did not validate: named on the cards, never read into a case."""

    ref: str  # "Kind/id", or where it is in the request when it has no usable id
    why: str
    raw: dict[str, Any]  # as received: only its codes and basedOn are looked at, to know whom it concerns

    def codes(self) -> list[tuple[str, str]]:
        """The (system, code) pairs of the raw resource's `code` or `medicationCodeableConcept`."""
        found: list[tuple[str, str]] = []
        for key in ("code", "medicationCodeableConcept"):
            concept = self.raw.get(key)
            codings = concept.get("coding") if isinstance(concept, dict) else None
            for c in codings if isinstance(codings, list) else []:
                if isinstance(c, dict) and isinstance(c.get("code"), str):
                    system = c.get("system")
                    found.append((system if isinstance(system, str) else "", c["code"]))
        return found

    def based_on(self) -> set[str]:
        refs = self.raw.get("basedOn")
        return (
            {r["reference"] for r in refs if isinstance(r, dict) and isinstance(r.get("reference"), str)}
            if isinstance(refs, list)
            else set()
        )


@dataclass
class OrderReading:
    """One injection order as read: the Case fields found, what is missing, and notes."""

    ref: str  # "ServiceRequest/<id>" (or the MedicationRequest's, when no procedure order is there to read)
    resource: dict[str, Any]  # the order as received, for suggestions
    procedure: Procedure | None  # None: the order's procedure code is not in the mapping (or unreadable)
    addons: list[tuple[str, Addon, dict[str, Any]]] = field(default_factory=list)  # (ref, entry, resource)
    levels: list[tuple[str, LevelAddon, dict[str, Any]]] = field(default_factory=list)  # additional levels: (ref, entry, resource)
    site: str | None = None
    injectate: Injectate | None = None
    variance: set[Variance] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    family: str = ""  # the variants row for suggestions: the procedure's, or the site's joint size
    side: str | None = None  # left, right or both, where the order's body site says
    related: set[str] = field(default_factory=set)  # the orders read with it (medication, guidance add-ons)
    unread: list[str] = field(default_factory=list)  # orders placed with it whose codes the mapping cannot read

    def __post_init__(self) -> None:
        self.family = self.family or (self.procedure.family if self.procedure else "")

    @property
    def ordered_guidance(self) -> Modality | None:
        """The guidance the order asks for: the code's own, plus any add-on guidance orders;
        None when the code leaves it open and no add-on names one, or when an order placed with
        it could not be read (it may order guidance: never read as "none ordered")."""
        if self.unread:
            return None
        kinds = {a.guidance for _, a, _ in self.addons}
        own = self.procedure.guidance if self.procedure else None
        if own is None and not kinds:
            return None
        kinds.add(own or Modality.LANDMARK)
        kinds.discard(Modality.LANDMARK)
        if kinds >= {Modality.ULTRASOUND, Modality.FLUOROSCOPY} or Modality.BOTH in kinds:
            return Modality.BOTH
        return next(iter(kinds)) if kinds else Modality.LANDMARK

    def case(self, available: tuple[str, ...] | None) -> dict[str, Any]:
        data: dict[str, Any] = {"site": self.site, "injectate": self.injectate.value if self.injectate else None}
        data["anatomy_variance"] = sorted(v.value for v in self.variance)
        if available is not None:
            data["available_modalities"] = list(available)
        return data


Entries = tuple[list[tuple[str | None, Any]], list[Unreadable]]  # (fullUrl, resource) read, and those that were not


def _validated(raw: Any) -> Any:
    """The R4B model of one resource, or the reason (a str) it is not one."""
    if not isinstance(raw, dict):
        return f"a resource must be a JSON object, not {type(raw).__name__}"
    kind = raw.get("resourceType")
    if not _resource_type(kind):
        return f"resourceType {json.dumps(kind)} is not a FHIR R4 resource type"
    try:
        return get_fhir_model_class(kind).model_validate(raw)
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        loc = ".".join(str(p) for p in first["loc"])
        return f"{kind}{'.' + loc if loc else ''}: {first['msg']} ({error.error_count()} problem(s))"
    except (KeyError, TypeError, ValueError, RecursionError) as error:
        # fhir.resources raises plain errors for some shapes (an unknown resourceType in a
        # contained resource, say): the sender's, never a server fault.
        return f"{kind}: {type(error).__name__}: {error}"


def _entries(data: Any, where: str) -> Entries:
    """The Bundle's resources, each validated alone. BadRequest only when the Bundle itself (not
    one of its resources) is malformed."""
    if not isinstance(data, dict) or data.get("resourceType") != "Bundle":
        raise BadRequest(f"{where} must be a FHIR Bundle (an object with resourceType 'Bundle')", code="structure", where=where)
    if "type" not in data:
        # The CDS Hooks specification's own draftOrders examples omit Bundle.type (1..1 in FHIR):
        # read such a Bundle as the collection it is rather than reject every example EHR.
        data = {**data, "type": "collection"}
    entries = data.get("entry")
    listed = entries if isinstance(entries, list) and all(isinstance(e, dict) for e in entries) else None
    shell = {**data, "entry": [{k: v for k, v in e.items() if k != "resource"} for e in listed]} if listed else data
    try:
        Bundle.model_validate(shell)
    except ValidationError as error:
        first = error.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise BadRequest(
            f"{where} is not a valid FHIR R4 Bundle: {loc}: {first['msg']} ({error.error_count()} problem(s))",
            code="structure",
            where=where,
        ) from None
    except (KeyError, TypeError, ValueError, RecursionError) as error:
        raise BadRequest(f"{where} is not a valid FHIR R4 Bundle: {type(error).__name__}: {error}", code="structure", where=where) from None
    read: list[tuple[str | None, Any]] = []
    unreadable: list[Unreadable] = []
    for i, entry in enumerate(listed or []):
        if entry.get("resource") is None:
            continue
        raw, model = entry["resource"], _validated(entry["resource"])
        if isinstance(model, str):
            kind, rid = (raw.get("resourceType"), raw.get("id")) if isinstance(raw, dict) else (None, None)
            named = isinstance(kind, str) and isinstance(rid, str) and len(kind) + len(rid) < 200
            unreadable.append(Unreadable(f"{kind}/{rid}" if named else f"{where}.entry.{i}", model, raw if isinstance(raw, dict) else {}))
        else:
            full_url = entry.get("fullUrl")
            read.append((full_url if isinstance(full_url, str) else None, model))
    return read, unreadable


def _side_of(mapping: Mapping, concepts: list[CodeableConcept] | None) -> str | None:
    """left, right or both from the laterality codes beside a body site; None when none says."""
    codes = [k for concept in concepts or [] for k in _codings(concept)]
    sides: set[str] = {mapping.laterality[k].side for k in codes if k in mapping.laterality}
    sides |= {side for k in codes if k in mapping.body_sites and (side := mapping.body_sites[k].side)}
    if not sides:
        return None
    return "both" if "both" in sides or sides >= {"left", "right"} else next(iter(sides))


_EARLIEST = dt.datetime.min.replace(tzinfo=dt.UTC)


def _observed_at(obs: Observation) -> tuple[dt.datetime, str]:
    """When an observation holds, as an instant to compare (an offset-less time taken as UTC, a
    period by its end, else its start), and as given; an undated one counts as the oldest."""
    raw: Any = obs.effectiveDateTime or obs.effectiveInstant
    if raw is None and obs.effectivePeriod is not None:
        raw = obs.effectivePeriod.end or obs.effectivePeriod.start
    raw = raw or obs.issued
    if raw is None:
        return _EARLIEST, ""
    label = raw.isoformat() if isinstance(raw, dt.date) else str(raw)
    if isinstance(raw, dt.datetime):
        when = raw
    elif isinstance(raw, dt.date):
        when = dt.datetime(raw.year, raw.month, raw.day)
    else:
        text = str(raw)
        text += "-01-01"[len(text) - 4 :] if len(text) in (4, 7) else ""  # a year or a month: its first day
        try:
            when = dt.datetime.fromisoformat(text)
        except ValueError:
            return _EARLIEST, label
    return (when if when.tzinfo else when.replace(tzinfo=dt.UTC)), label


def _codings(concept: CodeableConcept | None) -> list[tuple[str, str]]:
    if concept is None or not concept.coding:
        return []
    return [(c.system or "", c.code or "") for c in concept.coding if c.code]


def _ref(resource: Any) -> str:
    return f"{resource.get_resource_type()}/{resource.id}" if resource.id else ""


def _targets(references: list[Any] | None) -> set[str]:
    return {r.reference for r in references or [] if r.reference}


def _belongs(linked: set[str], names: set[str], ref: str, only: str | None) -> bool:
    """An order that names one by basedOn is that one's; one that names none belongs to the only
    injection order of the draft orders, and to none when there are several."""
    return bool(linked & names) or (not linked and only == ref)


@dataclass
class _Drafts:
    """The draft orders sorted by kind, with the names (reference, fullUrl) each may be cited by."""

    requests: list[tuple[ServiceRequest, set[str]]] = field(default_factory=list)
    medications: list[MedicationRequest] = field(default_factory=list)
    products: dict[str, CodeableConcept | None] = field(default_factory=dict)  # Medication resources by reference and fullUrl
    unreadable: list[Unreadable] = field(default_factory=list)

    @classmethod
    def of(cls, entries: Entries) -> _Drafts:
        read, unreadable = entries
        drafts = cls(unreadable=unreadable)
        seen: set[str] = {u.ref for u in unreadable if "/" in u.ref}
        for full_url, resource in read:
            ref = _ref(resource)
            if ref and ref in seen:
                raise BadRequest(f"context.draftOrders holds two resources with the id {ref}: a card could not say which it is for")
            seen.add(ref)
            names = {n for n in (ref, full_url) if n}
            if isinstance(resource, ServiceRequest):
                drafts.requests.append((resource, names))
            elif isinstance(resource, MedicationRequest):
                drafts.medications.append(resource)
            elif isinstance(resource, Medication):
                drafts.products.update(dict.fromkeys(names, resource.code))
        return drafts


class OrderReader:
    """Reads one hook request's draft orders and prefetch with one mapping."""

    def __init__(self, mapping: Mapping):
        self.mapping = mapping

    def read(self, draft_orders: Any, selections: list[str] | None, prefetch: dict[str, Any] | None) -> list[OrderReading]:
        drafts = _Drafts.of(_entries(draft_orders, "context.draftOrders"))
        m = self.mapping
        medicated = {t for med in drafts.medications if self._coded(med) for t in _targets(med.basedOn)}
        medicated |= {t for u in drafts.unreadable if any(k in m.medications for k in u.codes()) for t in u.based_on()}
        # An order is an injection by its procedure code, or because an injectate is ordered for it
        injections = [(r, n) for r, n in drafts.requests if any(k in m.procedures for k in _codings(r.code)) or n & medicated]
        broken = [u for u in drafts.unreadable if u.ref.startswith("ServiceRequest/") and self._injection(u, medicated)]
        refs = [_ref(r) for r, _ in injections] + [u.ref for u in broken]
        only = refs[0] if len(refs) == 1 else None
        readings = [self._order(order, names, drafts, only) for order, names in injections]
        readings += [self._broken(u, drafts, only) for u in broken]
        if selections is not None:
            chosen = set(selections)
            readings = [r for r in readings if ({r.ref} | r.related) & chosen]
        if not readings:
            return []
        record = _PatientRecord(m, prefetch)
        for reading in readings:
            for other in drafts.unreadable:
                if other.ref != reading.ref and not any(other.ref in p for p in reading.problems):
                    reading.notes.append(Said("draft order {} could not be read and was not used: {}", other.ref, other.why))
            record.variance(reading)
        return readings

    def _coded(self, med: MedicationRequest) -> bool:
        concept = med.medicationCodeableConcept
        return concept is not None and any(k in self.mapping.medications for k in _codings(concept))

    def _injection(self, unreadable: Unreadable, medicated: set[str]) -> bool:
        return any(k in self.mapping.procedures for k in unreadable.codes()) or unreadable.ref in medicated

    def _order(self, order: ServiceRequest, names: set[str], drafts: _Drafts, only: str | None) -> OrderReading:
        m = self.mapping
        ref = _ref(order)
        codings = _codings(order.code)
        procedure = next((m.procedures[k] for k in codings if k in m.procedures), None)
        reading = OrderReading(ref=ref, resource=order.model_dump(mode="json", exclude_none=True), procedure=procedure)
        own_level = next((m.levels[k] for k in codings if k in m.levels), None)
        if own_level is not None:  # an additional level ordered as if it were the injection
            reading.problems.append(
                f"its code {own_level.code} orders an additional level; order the first level "
                f"({' or '.join(own_level.adds_to)}) with it, the additional level basedOn that order"
            )
        elif procedure is None:
            codes = ", ".join(f"{s}|{c}" for s, c in codings) or "none"
            reading.problems.append(
                Said(
                    "an injectate is ordered for it, but its procedure code is not in rules/fhir-mapping.yaml "
                    "(procedures): {}. Code the injection with a CPT code listed there",
                    codes,
                )
            )
            self._left_out(reading, codings)
        for addon, _ in drafts.requests:
            if addon is order or not _belongs(_targets(addon.basedOn), names, ref, only):
                continue
            addon_codings = _codings(addon.code)
            entry = next((m.addons[k] for k in addon_codings if k in m.addons), None)
            if entry is not None:
                reading.addons.append((_ref(addon), entry, addon.model_dump(mode="json", exclude_none=True)))
                reading.related.add(_ref(addon))
            level = next((m.levels[k] for k in addon_codings if k in m.levels), None)
            if level is not None:
                self._level(reading, _ref(addon), level, addon.model_dump(mode="json", exclude_none=True))
            elif entry is None and self._placed_with(addon, names, addon_codings):
                self._unread(reading, _ref(addon), addon_codings)
        for med in drafts.medications:
            if _belongs(_targets(med.basedOn), names, ref, only):
                reading.related.add(_ref(med))
        for lost in drafts.unreadable:
            if lost.ref.startswith("MedicationRequest/") and _belongs(lost.based_on(), names, ref, only):
                reading.related.add(lost.ref)
                reading.problems.append(
                    Said("the medication order {} for it could not be read ({}): its injectate is unknown", lost.ref, lost.why)
                )
        self._site(order, reading)
        self._joint_size(reading)
        self._injectate(drafts, reading, names, only)
        return reading

    def _level(self, reading: OrderReading, ref: str, level: LevelAddon, resource: dict[str, Any]) -> None:
        """An additional level, read with the order it adds to (the same site, injectate and
        guidance); one that adds to another code (so another procedure or guidance) contradicts it."""
        reading.levels.append((ref, level, resource))
        reading.related.add(ref)
        own = reading.procedure.code if reading.procedure else None
        if own is not None and own not in level.adds_to:
            reading.problems.append(
                Said(f"the additional-level order {{}} ({level.code}) adds a level to {' or '.join(level.adds_to)}, not to {own}", ref)
            )
        else:
            reading.notes.append(Said(f"additional level ordered with it: {{}} ({level.code}), read as the same injection", ref))

    def _placed_with(self, other: ServiceRequest, names: set[str], codings: list[tuple[str, str]]) -> bool:
        """An order that is not an injection itself and is placed with this one: named by its
        basedOn, or a guidance code the mapping leaves out on purpose (CT guidance), whose order
        an EHR may send without basedOn."""
        m = self.mapping
        if any(k in m.procedures for k in codings):
            return False
        return bool(_targets(other.basedOn) & names) or any(k in m.unverified and m.unverified[k].kind == "guidance" for k in codings)

    def _unread(self, reading: OrderReading, ref: str, codings: list[tuple[str, str]]) -> None:
        """An order placed with this one that the mapping cannot read: it may order guidance (CT
        guidance does), so the guidance ordered is not known rather than read as none."""
        reading.unread.append(ref)
        codes = ", ".join(f"{s}|{c}" for s, c in codings) or "none"
        reading.notes.append(
            Said(
                "the order {} ({}) is placed with it but not read: its code is not a guidance or level add-on in "
                "rules/fhir-mapping.yaml, so the guidance ordered is not known",
                ref,
                codes,
            )
        )
        self._left_out(reading, codings)

    def _left_out(self, reading: OrderReading, keys: list[tuple[str, str]]) -> None:
        """Say why a code the mapping leaves out on purpose (unverified_codes) is not read."""
        for system, code in keys:
            left = self.mapping.unverified.get((system, code))
            if left is not None:
                reading.notes.append(Said(f"{{}} is not in the mapping on purpose: {left.why}", f"{system}|{code}"))

    def _broken(self, order: Unreadable, drafts: _Drafts, only: str | None) -> OrderReading:
        """An injection order that did not validate: its own card says so."""
        procedure = next((self.mapping.procedures[k] for k in order.codes() if k in self.mapping.procedures), None)
        reading = OrderReading(ref=order.ref, resource=order.raw, procedure=procedure)
        reading.problems.append(Said("the injection order {} could not be read: {}", order.ref, order.why))
        reading.related |= {_ref(med) for med in drafts.medications if _belongs(_targets(med.basedOn), {order.ref}, order.ref, only)}
        return reading

    def _site(self, order: ServiceRequest, reading: OrderReading) -> None:
        m = self.mapping
        found: dict[str, str] = {}
        regions: list[str] = []
        unread: list[str] = []
        for concept in order.bodySite or []:
            for system, code in _codings(concept):
                if (system, code) in m.body_sites:
                    found[m.body_sites[(system, code)].site] = f"{system}|{code}"
                elif system == m.spec.local_systems.site:
                    if code in m.sites:
                        found[code] = f"{system}|{code}"
                    else:
                        reading.problems.append(Said(f"body site {{}} is not a catalogue site; valid: {', '.join(sorted(m.sites))}", code))
                elif (system, code) in m.regions:
                    regions.append(f"{code} ({m.regions[(system, code)].note})")
                elif (system, code) in m.laterality:
                    continue  # the side, read by _side_of; never a site
                else:
                    unread.append(f"{system}|{code}")
                    self._left_out(reading, [(system, code)])
        reading.side = _side_of(m, order.bodySite)
        if reading.procedure is not None and reading.procedure.site:
            found.setdefault(reading.procedure.site, f"procedure code {reading.procedure.code}")
        if len(found) > 1:
            reading.problems.append("the order names more than one site: " + "; ".join(f"{s} from {w}" for s, w in sorted(found.items())))
        elif found:
            reading.site = next(iter(found))
        else:
            advice = (
                f". Give ServiceRequest.bodySite as a SNOMED CT body structure from rules/fhir-mapping.yaml "
                f"or a catalogue key in {m.spec.local_systems.site}"
            )
            if regions:
                reading.problems.append("no body site the mapping can read; a region code is not enough: " + "; ".join(regions) + advice)
            elif unread:
                reading.problems.append(Said("no body site the mapping can read; codes not in the mapping: {}" + advice, ", ".join(unread)))
            else:
                reading.problems.append("no body site the mapping can read" + advice)

    def _joint_size(self, reading: OrderReading) -> None:
        if reading.procedure is None:
            return
        variants = self.mapping.spec.variants
        family = self.mapping.spec.joint_sizes.family_for(reading.procedure.family, reading.site)
        if family != reading.family:
            reading.family = family
            codes = ", ".join(dict.fromkeys(c for m in (Modality.LANDMARK, Modality.ULTRASOUND) for c in variants[family].get(m, ())))
            reading.notes.append(
                f"procedure code {reading.procedure.code} is for a {reading.procedure.family.replace('_', ' ')}; by the CPT "
                f"descriptors the {reading.site} is a {family.replace('_', ' ')} ({codes}): suggestions use those codes"
            )

    def _medication_concept(self, med: MedicationRequest, drafts: _Drafts, unread: list[str]) -> CodeableConcept | None:
        concept = med.medicationCodeableConcept
        target = (med.medicationReference.reference or "") if med.medicationReference else ""
        if concept is None and target.startswith("#"):  # a Medication contained in the request
            contained = next((c for c in med.contained or [] if getattr(c, "id", None) == target[1:]), None)
            concept = getattr(contained, "code", None)
        elif concept is None and target:  # a Medication elsewhere in the draft orders
            concept = drafts.products.get(target)
        if concept is None and target:
            unread.append(f"medicationReference '{target}' (no coded Medication by that reference in the draft orders)")
        return concept

    def _injectate(self, drafts: _Drafts, reading: OrderReading, names: set[str], only: str | None) -> None:
        m = self.mapping
        found: dict[Injectate, str] = {}
        unread: list[str] = []
        for med in drafts.medications:
            if not _belongs(_targets(med.basedOn), names, reading.ref, only):
                continue
            for system, code in _codings(self._medication_concept(med, drafts, unread)):
                if (system, code) in m.medications:
                    found[m.medications[(system, code)].injectate] = f"{system}|{code}"
                elif system == m.spec.local_systems.injectate and code in Injectate.__members__.values():
                    found[Injectate(code)] = f"{system}|{code}"
                else:
                    unread.append(f"{system}|{code}")
                    self._left_out(reading, [(system, code)])
        named = reading.procedure.injectate if reading.procedure else None
        if named is not None and reading.procedure is not None and named not in found:
            found[named] = f"procedure code {reading.procedure.code}"
            reading.notes.append(f"injectate {named.value}: named by procedure code {reading.procedure.code}")
        if found:
            chosen = m.spec.combined_injectates.first(set(found))
            reading.injectate = chosen
            others = sorted(i.value for i in found if i is not chosen)
            if others:
                reading.notes.append(
                    f"injectate {chosen.value} ({found[chosen]}): {', '.join(others)} ordered with it as well; "
                    "a mixture is read as its first injectate in rules/fhir-mapping.yaml combined_injectates"
                )
            return
        advice = (
            ". Order the injectate as a MedicationRequest (basedOn this ServiceRequest) coded from "
            f"rules/fhir-mapping.yaml or {m.spec.local_systems.injectate} ({', '.join(i.value for i in Injectate)})"
        )
        if unread:
            reading.problems.append(
                Said("no injectate the mapping can read; medication codes not in the mapping: {}" + advice, ", ".join(unread))
            )
        else:
            reading.problems.append("no injectate the mapping can read" + advice)


def _label(proc: FhirProcedure) -> str:
    code = proc.code
    if code is not None and code.text:
        return str(code.text)
    first = next((c for c in (code.coding or []) if c.display or c.code), None) if code is not None else None
    return str(first.display or first.code) if first is not None else "procedure"


class _PatientRecord:
    """Anatomy variance from the prefetched Conditions, Observations (BMI) and Procedures, and
    what of the record could not be read, each resolved as the mapping's variance.unreadable says."""

    def __init__(self, mapping: Mapping, prefetch: dict[str, Any] | None):
        self.mapping = mapping
        self.doubts: list[tuple[Variance, Said]] = []  # a variance assumed, and the unread part of the record behind it
        self.skipped: list[str] = []  # record entries seen, read, and not used: said on the card
        self.records: dict[str, list[Any]] = {key: self._resources(prefetch or {}, key) for key in RECORD}
        self.general = self._general()

    def _doubt(self, key: str, said: Said) -> None:
        self.doubts.append((getattr(self.mapping.spec.variance.unreadable, key), said))

    def _resources(self, prefetch: dict[str, Any], key: str) -> list[Any]:
        data = prefetch.get(key)
        if data is None:
            self._doubt(key, Said(f"prefetch '{key}' was not supplied, so the patient's {key} are unknown"))
            return []
        if isinstance(data, dict) and data.get("resourceType") == "OperationOutcome":
            # CDS Hooks lets the EHR send an OperationOutcome for a prefetch it could not fulfil
            found = data.get("issue")
            issues: list[Any] = found if isinstance(found, list) else []
            said = "; ".join(str(i.get("diagnostics") or i.get("code")) for i in issues[:3] if isinstance(i, dict))
            self._doubt(key, Said(f"prefetch '{key}' failed at the EHR: {{}}", said or "no reason given"))
            return []
        try:
            read, unreadable = _entries(data, f"prefetch.{key}")
        except BadRequest as error:
            self._doubt(key, Said(f"prefetch '{key}' could not be read: {{}}", error.message))
            return []
        for lost in unreadable:
            self._doubt(key, Said(f"{{}} in prefetch '{key}' could not be read: {{}}", lost.ref, lost.why))
        links = data.get("link")
        if isinstance(links, list) and any(isinstance(link, dict) and link.get("relation") == "next" for link in links):
            # CDS Hooks lets the EHR paginate a prefetch; the service does not fetch the other pages
            self._doubt(key, Said(f"prefetch '{key}' holds only the first page of the record (a 'next' link was not followed)"))
        return [resource for _, resource in read if isinstance(resource, RECORD[key])]

    def _general(self) -> dict[Variance, str]:
        m = self.mapping
        out: dict[Variance, str] = {}
        for cond in self.records["conditions"]:
            clinical = {c for _, c in _codings(cond.clinicalStatus)}
            verification = {c for _, c in _codings(cond.verificationStatus)}
            if clinical & INACTIVE_CONDITION or verification & NOT_CONFIRMED:
                continue
            if not _codings(cond.code):
                self._doubt("conditions", Said("Condition {} has no coded diagnosis to read", _ref(cond) or "(no id)"))
            for key in _codings(cond.code):
                if key in m.conditions:
                    out[m.conditions[key].variance] = f"Condition {key[1]} ({m.conditions[key].display})"
        out.update(self._observations())
        return out

    def _observations(self) -> dict[Variance, str]:
        """The latest usable value of each mapped code (of two at one instant, the higher); a value
        that cannot be used and is not older than the latest usable one is doubted, never read as
        a normal value."""
        m = self.mapping
        latest: dict[tuple[str, str], tuple[dt.datetime, float, str]] = {}
        unusable: list[tuple[tuple[str, str], dt.datetime, Said]] = []
        for obs in self.records["observations"]:
            keys = [key for key in _codings(obs.code) if key in m.observations]
            if not keys:
                continue
            quantity = obs.valueQuantity
            value = float(quantity.value) if quantity is not None and quantity.value is not None else math.nan
            unit = (quantity.code or quantity.unit or "") if quantity is not None else ""
            when, label = _observed_at(obs)
            ref = _ref(obs) or "(no id)"
            if obs.status in VOID_OBSERVATION:
                self.skipped.append(Said(f"Observation {keys[0][1]} {{}} not used: status {obs.status}", ref))
                continue
            for key in keys:
                rule = m.observations[key]
                if obs.status not in FINAL_OBSERVATION or not math.isfinite(value) or unit.replace(" ", "") != rule.unit:
                    why = Said(
                        f"Observation {key[1]} {{}} cannot be used: status {obs.status}, value {{}} {{}} (the mapping reads {rule.unit})",
                        ref,
                        f"{value:g}",
                        unit or "(no unit)",
                    )
                    unusable.append((key, when, why))
                elif key not in latest or (when, value) > latest[key][:2]:
                    latest[key] = (when, value, label)  # at one instant the higher value: the variance is the safe reading
        for key, when, why in unusable:
            if key not in latest or when >= latest[key][0]:
                self._doubt("observations", why)
            else:
                self.skipped.append(why.within("", "; older than the value used"))
        out: dict[Variance, str] = {}
        for key, (_, value, label) in latest.items():
            rule = m.observations[key]
            if value >= rule.at_least:
                on = f" on {label}" if label else ""
                out[rule.variance] = f"Observation {key[1]} = {value:g} {rule.unit} (at least {rule.at_least:g}){on}"
        return out

    def _surgery(self, proc: FhirProcedure, reading: OrderReading) -> tuple[str, Said | None]:
        """('at', None) surgery at the ordered site; ('no', note) not there; ('doubt', why) the
        record cannot tell (no category, or a body site the mapping does not list)."""
        m = self.mapping
        categories = _codings(proc.category)
        if categories and not any(k in m.surgery for k in categories):
            return "no", None  # coded, and not surgery
        sites: set[str] = set()
        unread: list[str] = []
        for concept in proc.bodySite or []:
            codes = _codings(concept)
            here = {m.body_sites[k].site for k in codes if k in m.body_sites}
            here |= {c for s, c in codes if s == m.spec.local_systems.site}
            sites |= here
            if not here and not any(k in m.laterality for k in codes):
                unread.append(", ".join(f"{s}|{c}" for s, c in codes) or (concept.text or "uncoded"))
        side = _side_of(m, proc.bodySite)
        if reading.site in sites and {side, reading.side} >= {"left", "right"}:
            return "no", Said(
                f"anatomy_variance: a {{}} at the {side} {reading.site} is not at the {reading.side} one ordered", _label(proc)
            )
        if sites and not unread and reading.site not in sites:
            return "no", None  # elsewhere
        if categories and reading.site in sites:
            return "at", None
        reasons = [] if categories else ["no category says whether it was surgery"]
        if not unread and not sites:
            reasons.append("it names no body site")
        values = [_ref(proc) or "(no id)", _label(proc)]
        if unread:
            reasons.append("its body site is not in the mapping: {}")
            values.append("; ".join(unread))
        return "doubt", Said("completed Procedure {} ({}): " + "; ".join(reasons), *values)

    def variance(self, reading: OrderReading) -> None:
        for variance, why in self.general.items():
            reading.variance.add(variance)
            reading.notes.append(f"anatomy_variance {variance.value}: from {why}")
        doubts = list(self.doubts)
        for proc in self.records["procedures"] if reading.site else []:
            if proc.status != "completed":
                continue
            found, said = self._surgery(proc, reading)
            if found == "no" and said:
                reading.notes.append(said)
            elif found == "at" and Variance.PRIOR_SURGERY not in reading.variance:
                reading.variance.add(Variance.PRIOR_SURGERY)
                reading.notes.append(Said(f"anatomy_variance prior_surgery: completed {{}} at the {reading.site}", _label(proc)))
            elif found == "doubt" and said:
                doubts.append((self.mapping.spec.variance.unreadable.procedures, said))
        for variance, doubt in doubts:
            taken = "assumed" if variance not in reading.variance else "also"
            reading.variance.add(variance)
            reading.notes.append(
                doubt.within(
                    f"anatomy_variance {variance.value} {taken}: ",
                    "; what cannot be read is never read as no history (rules/fhir-mapping.yaml variance.unreadable)",
                )
            )
        reading.notes.extend(self.skipped)
