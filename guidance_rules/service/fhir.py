"""Reading FHIR R4 draft orders and the patient's record into Cases, with the mapping's data.

Resources are validated with `fhir.resources` (R4B models, pydantic v2), never read as loose
dictionaries. What the order does not say is left to the library's own resolution (listed as
assumptions); what the mapping cannot read (no body site, say) becomes a problem, never a guess.
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
from .mapping import Addon, Mapping, Procedure

INACTIVE_CONDITION = {"inactive", "remission", "resolved"}
NOT_CONFIRMED = {"refuted", "entered-in-error"}
FINAL_OBSERVATION = {"final", "amended", "corrected"}


def _resource_type(kind: object) -> bool:
    """Whether the R4B models know `kind` as a resource (not a data type or a backbone element)."""
    if not isinstance(kind, str) or not kind.isidentifier():
        return False
    try:
        return issubclass(get_fhir_model_class(kind), Resource)
    except ValueError:
        return False


@dataclass
class OrderReading:
    """One injection order as read: the Case fields found, what is missing, and notes."""

    ref: str  # "ServiceRequest/<id>"
    resource: dict[str, Any]  # the order as received, for suggestions
    procedure: Procedure
    addons: list[tuple[str, Addon, dict[str, Any]]] = field(default_factory=list)  # (ref, entry, resource)
    site: str | None = None
    injectate: Injectate | None = None
    variance: set[Variance] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    family: str = ""  # the variants row for suggestions: the procedure's, or the site's joint size
    side: str | None = None  # left, right or both, where the order's body site says

    def __post_init__(self) -> None:
        self.family = self.family or self.procedure.family

    @property
    def ordered_guidance(self) -> Modality | None:
        """The guidance the order asks for: the code's own, plus any add-on guidance orders;
        None when the code leaves it open and no add-on names one."""
        kinds = {a.guidance for _, a, _ in self.addons}
        if self.procedure.guidance is None and not kinds:
            return None
        kinds.add(self.procedure.guidance or Modality.LANDMARK)
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


def _bundle(data: Any, where: str) -> Bundle:
    if not isinstance(data, dict) or data.get("resourceType") != "Bundle":
        raise BadRequest(f"{where} must be a FHIR Bundle (an object with resourceType 'Bundle')", code="structure", where=where)
    if "type" not in data:
        # The CDS Hooks specification's own draftOrders examples omit Bundle.type (1..1 in FHIR):
        # read such a Bundle as the collection it is rather than reject every example EHR.
        data = {**data, "type": "collection"}
    entries = data.get("entry")
    for i, entry in enumerate(entries if isinstance(entries, list) else []):  # the model names any other shape
        resource = entry.get("resource") if isinstance(entry, dict) else None
        kind = resource.get("resourceType") if isinstance(resource, dict) else None
        if isinstance(resource, dict) and not _resource_type(kind):
            # fhir.resources raises a KeyError (not a ValidationError) for a type it does not know
            raise BadRequest(
                f"{where}.entry.{i}.resource: resourceType {json.dumps(kind)} is not a FHIR R4 resource type",
                code="structure",
                where=f"{where}.entry.{i}.resource.resourceType",
            )
    try:
        return Bundle.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise BadRequest(
            f"{where} is not a valid FHIR R4 Bundle: {loc}: {first['msg']} ({error.error_count()} problem(s))",
            code="structure",
            where=where,
        ) from None
    except (KeyError, TypeError, ValueError, RecursionError) as error:
        # fhir.resources raises plain errors for some shapes (an unknown resourceType in a
        # contained resource, say); they are the sender's, never a server fault.
        raise BadRequest(
            f"{where} is not a valid FHIR R4 Bundle: {type(error).__name__}: {error}", code="structure", where=where
        ) from None


def _side_of(mapping: Mapping, concepts: list[CodeableConcept] | None) -> str | None:
    """left, right or both from the laterality codes beside a body site; None when none says."""
    sides = {mapping.laterality[k].side for concept in concepts or [] for k in _codings(concept) if k in mapping.laterality}
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


class OrderReader:
    """Reads one hook request's draft orders and prefetch with one mapping."""

    def __init__(self, mapping: Mapping):
        self.mapping = mapping

    def read(self, draft_orders: Any, selections: list[str] | None, prefetch: dict[str, Any] | None) -> list[OrderReading]:
        bundle = _bundle(draft_orders, "context.draftOrders")
        requests: list[tuple[ServiceRequest, set[str]]] = []  # with the names a basedOn may use
        medications: list[MedicationRequest] = []
        products: dict[str, CodeableConcept | None] = {}  # Medication resources by reference and fullUrl
        seen: set[str] = set()
        for entry in bundle.entry or []:
            resource = entry.resource
            ref = _ref(resource) if resource is not None else ""
            if ref and ref in seen:
                raise BadRequest(f"context.draftOrders holds two resources with the id {ref}: a card could not say which it is for")
            seen.add(ref)
            if isinstance(resource, ServiceRequest):
                requests.append((resource, {n for n in (ref, entry.fullUrl) if n}))
            elif isinstance(resource, MedicationRequest):
                medications.append(resource)
            elif isinstance(resource, Medication):
                for name in (ref, entry.fullUrl):
                    if name:
                        products[name] = resource.code
        m = self.mapping
        injections = [(r, names) for r, names in requests if any(k in m.procedures for k in _codings(r.code))]
        addons = [r for r, _ in requests if any(k in m.addons for k in _codings(r.code))]
        # An add-on or medication order that names no injection order belongs to the one injection
        # order of the draft orders, and to none when there are several: selecting one of them
        # does not make another's unlinked orders its own.
        only = _ref(injections[0][0]) if len(injections) == 1 else None
        if selections is not None:
            chosen = set(selections)
            injections = [(r, names) for r, names in injections if _ref(r) in chosen]
        if not injections:
            return []
        context = _PatientRecord(m, prefetch)
        readings = []
        for order, names in injections:
            ref = _ref(order)
            procedure = next(m.procedures[k] for k in _codings(order.code) if k in m.procedures)
            reading = OrderReading(ref=ref, resource=order.model_dump(mode="json", exclude_none=True), procedure=procedure)
            for addon in addons:
                linked = _targets(addon.basedOn)
                if linked & names or (not linked and only == ref):
                    entry_ = next(m.addons[k] for k in _codings(addon.code) if k in m.addons)
                    reading.addons.append((_ref(addon), entry_, addon.model_dump(mode="json", exclude_none=True)))
            self._site(order, reading)
            self._joint_size(reading)
            self._injectate(medications, products, reading, names, only)
            context.variance(reading)
            readings.append(reading)
        return readings

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
                        reading.problems.append(f"body site '{code}' is not a catalogue site; valid: {', '.join(sorted(m.sites))}")
                elif (system, code) in m.regions:
                    regions.append(f"{code} ({m.regions[(system, code)].note})")
                elif (system, code) in m.laterality:
                    continue  # the side, read by _side_of; never a site
                else:
                    unread.append(f"{system}|{code}")
        reading.side = _side_of(m, order.bodySite)
        if reading.procedure.site:
            found.setdefault(reading.procedure.site, f"procedure code {reading.procedure.code}")
        if len(found) > 1:
            reading.problems.append("the order names more than one site: " + "; ".join(f"{s} from {w}" for s, w in sorted(found.items())))
        elif found:
            reading.site = next(iter(found))
        else:
            what = "no body site the mapping can read"
            if regions:
                what += "; a region code is not enough: " + "; ".join(regions)
            elif unread:
                what += f"; codes not in the mapping: {', '.join(unread)}"
            reading.problems.append(
                what + f". Give ServiceRequest.bodySite as a SNOMED CT body structure from rules/fhir-mapping.yaml "
                f"or a catalogue key in {m.spec.local_systems.site}"
            )

    def _joint_size(self, reading: OrderReading) -> None:
        variants = self.mapping.spec.variants
        family = self.mapping.spec.joint_sizes.family_for(reading.procedure.family, reading.site)
        if family != reading.family:
            reading.family = family
            codes = ", ".join(dict.fromkeys(c for m in (Modality.LANDMARK, Modality.ULTRASOUND) for c in variants[family].get(m, ())))
            reading.notes.append(
                f"procedure code {reading.procedure.code} is for a {reading.procedure.family.replace('_', ' ')}; by the CPT "
                f"descriptors the {reading.site} is a {family.replace('_', ' ')} ({codes}): suggestions use those codes"
            )

    def _injectate(
        self,
        medications: list[MedicationRequest],
        products: dict[str, CodeableConcept | None],
        reading: OrderReading,
        names: set[str],
        only: str | None,
    ) -> None:
        m = self.mapping
        found: dict[Injectate, str] = {}
        unread: list[str] = []
        for med in medications:
            linked = _targets(med.basedOn)
            if not (linked & names or (not linked and only == reading.ref)):
                continue
            concept = med.medicationCodeableConcept
            target = (med.medicationReference.reference or "") if med.medicationReference else ""
            if concept is None and target.startswith("#"):  # a Medication contained in the request
                contained = next((c for c in med.contained or [] if getattr(c, "id", None) == target[1:]), None)
                concept = getattr(contained, "code", None)
            elif concept is None and target:  # a Medication elsewhere in the draft orders
                concept = products.get(target)
            if concept is None and target:
                unread.append(f"medicationReference '{target}' (no coded Medication by that reference in the draft orders)")
            for system, code in _codings(concept):
                if (system, code) in m.medications:
                    found[m.medications[(system, code)].injectate] = f"{system}|{code}"
                elif system == m.spec.local_systems.injectate and code in Injectate.__members__.values():
                    found[Injectate(code)] = f"{system}|{code}"
                else:
                    unread.append(f"{system}|{code}")
        named = reading.procedure.injectate
        if named is not None and named not in found:
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
        else:
            what = "no injectate the mapping can read"
            if unread:
                what += f"; medication codes not in the mapping: {', '.join(unread)}"
            reading.problems.append(
                what + ". Order the injectate as a MedicationRequest (basedOn this ServiceRequest) coded from "
                f"rules/fhir-mapping.yaml or {m.spec.local_systems.injectate} ({', '.join(i.value for i in Injectate)})"
            )


class _PatientRecord:
    """Anatomy variance from the prefetched Conditions, Observations (BMI) and Procedures."""

    def __init__(self, mapping: Mapping, prefetch: dict[str, Any] | None):
        self.mapping = mapping
        prefetch = prefetch or {}
        self.missing = [key for key in ("conditions", "observations", "procedures") if prefetch.get(key) is None]
        self.failed: list[str] = []  # prefetch the EHR could not fulfil (an OperationOutcome in its place)
        self.skipped: list[str] = []  # record entries seen but not used, said on the card
        self.conditions = self._resources(prefetch, "conditions", Condition)
        self.observations = self._resources(prefetch, "observations", Observation)
        self.procedures = self._resources(prefetch, "procedures", FhirProcedure)
        self.general = self._general()

    def _resources(self, prefetch: dict[str, Any], key: str, kind: type) -> list[Any]:
        data = prefetch.get(key)
        if data is None:
            return []
        if isinstance(data, dict) and data.get("resourceType") == "OperationOutcome":
            # CDS Hooks lets the EHR send an OperationOutcome for a prefetch it could not fulfil:
            # the record is then unknown, as if not supplied, and the card says so.
            found = data.get("issue")
            issues: list[Any] = found if isinstance(found, list) else []
            said = "; ".join(str(i.get("diagnostics") or i.get("code")) for i in issues[:3] if isinstance(i, dict))
            self.failed.append(f"prefetch '{key}' failed at the EHR{': ' + said[:300] if said else ''}")
            return []
        bundle = _bundle(data, f"prefetch.{key}")
        return [e.resource for e in bundle.entry or [] if isinstance(e.resource, kind)]

    def _general(self) -> dict[Variance, str]:
        m = self.mapping
        out: dict[Variance, str] = {}
        for cond in self.conditions:
            clinical = {c for _, c in _codings(cond.clinicalStatus)}
            verification = {c for _, c in _codings(cond.verificationStatus)}
            if clinical & INACTIVE_CONDITION or verification & NOT_CONFIRMED:
                continue
            for key in _codings(cond.code):
                if key in m.conditions:
                    out[m.conditions[key].variance] = f"Condition {key[1]} ({m.conditions[key].display})"
        latest: dict[tuple[str, str], tuple[dt.datetime, float, str, str]] = {}
        for obs in self.observations:
            keys = [key for key in _codings(obs.code) if key in m.observations]
            if not keys:
                continue
            quantity = obs.valueQuantity
            value = float(quantity.value) if quantity is not None and quantity.value is not None else math.nan
            if obs.status not in FINAL_OBSERVATION or not math.isfinite(value):
                self.skipped.append(f"Observation {keys[0][1]} {_ref(obs) or ''} not used: status {obs.status}, value {value:g}")
                continue
            when, label = _observed_at(obs)
            for key in keys:
                unit = quantity.code or quantity.unit or ""
                if key not in latest or when > latest[key][0]:
                    latest[key] = (when, value, unit, label)
        for key, (_, value, unit, label) in latest.items():
            rule = m.observations[key]
            if unit.replace(" ", "") != rule.unit:
                # a value in another unit is not compared against the threshold's unit
                self.skipped.append(f"Observation {key[1]} = {value:g} {unit or '(no unit)'} not used: the mapping reads {rule.unit}")
                continue
            if value >= rule.at_least:
                on = f" on {label}" if label else ""
                out[rule.variance] = f"Observation {key[1]} = {value:g} {rule.unit} (at least {rule.at_least:g}){on}"
        return out

    def variance(self, reading: OrderReading) -> None:
        for variance, why in self.general.items():
            reading.variance.add(variance)
            reading.notes.append(f"anatomy_variance {variance.value}: from {why}")
        if reading.site:
            for proc in self.procedures:
                if proc.status != "completed":
                    continue
                if not any(k in self.mapping.surgery for k in _codings(proc.category)):
                    continue
                sites = set()
                for concept in proc.bodySite or []:
                    for system, code in _codings(concept):
                        if (system, code) in self.mapping.body_sites:
                            sites.add(self.mapping.body_sites[(system, code)].site)
                        elif system == self.mapping.spec.local_systems.site:
                            sites.add(code)
                side = _side_of(self.mapping, proc.bodySite)
                label = proc.code.text if proc.code and proc.code.text else "surgical procedure"
                if reading.site in sites and {side, reading.side} >= {"left", "right"}:
                    elsewhere = f"a {label} at the {side} {reading.site} is not at the {reading.side} one ordered"
                    reading.notes.append(f"anatomy_variance: {elsewhere}")
                    continue
                if reading.site in sites:
                    reading.variance.add(Variance.PRIOR_SURGERY)
                    reading.notes.append(f"anatomy_variance prior_surgery: completed {label} at the {reading.site}")
                    break
        for key in self.missing:
            reading.notes.append(f"prefetch '{key}' was not supplied: anatomy variance from {key} taken as none")
        for failure in self.failed:
            reading.notes.append(f"{failure}: anatomy variance from it taken as none")
        reading.notes.extend(self.skipped)
