"""Reading FHIR R4 draft orders and the patient's record into Cases, with the mapping's data.

Resources are validated with `fhir.resources` (R4B models, pydantic v2), never read as loose
dictionaries. What the order does not say is left to the library's own resolution (listed as
assumptions); what the mapping cannot read (no body site, say) becomes a problem, never a guess.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.codeableconcept import CodeableConcept
from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.medication import Medication
from fhir.resources.R4B.medicationrequest import MedicationRequest
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.procedure import Procedure as FhirProcedure
from fhir.resources.R4B.servicerequest import ServiceRequest
from pydantic import ValidationError

from guidance_rules.model import Injectate, Modality, Variance

from .errors import BadRequest
from .mapping import Addon, Mapping, Procedure

INACTIVE_CONDITION = {"inactive", "remission", "resolved"}
NOT_CONFIRMED = {"refuted", "entered-in-error"}
FINAL_OBSERVATION = {"final", "amended", "corrected"}


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
        requests: list[ServiceRequest] = []
        medications: list[MedicationRequest] = []
        products: dict[str, CodeableConcept | None] = {}  # Medication resources by reference and fullUrl
        for entry in bundle.entry or []:
            resource = entry.resource
            if isinstance(resource, ServiceRequest):
                requests.append(resource)
            elif isinstance(resource, MedicationRequest):
                medications.append(resource)
            elif isinstance(resource, Medication):
                for name in (_ref(resource), entry.fullUrl):
                    if name:
                        products[name] = resource.code
        m = self.mapping
        injections = [r for r in requests if any(k in m.procedures for k in _codings(r.code))]
        addons = [r for r in requests if any(k in m.addons for k in _codings(r.code))]
        if selections is not None:
            chosen = set(selections)
            injections = [r for r in injections if _ref(r) in chosen]
        if not injections:
            return []
        context = _PatientRecord(m, prefetch)
        only = _ref(injections[0]) if len(injections) == 1 else None
        readings = []
        for order in injections:
            ref = _ref(order)
            procedure = next(m.procedures[k] for k in _codings(order.code) if k in m.procedures)
            reading = OrderReading(ref=ref, resource=order.model_dump(mode="json", exclude_none=True), procedure=procedure)
            for addon in addons:
                linked = _targets(addon.basedOn)
                if ref in linked or (not linked and only == ref):
                    entry_ = next(m.addons[k] for k in _codings(addon.code) if k in m.addons)
                    reading.addons.append((_ref(addon), entry_, addon.model_dump(mode="json", exclude_none=True)))
            self._site(order, reading)
            self._joint_size(reading)
            self._injectate(medications, products, reading, only)
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
                else:
                    unread.append(f"{system}|{code}")
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
        self, medications: list[MedicationRequest], products: dict[str, CodeableConcept | None], reading: OrderReading, only: str | None
    ) -> None:
        m = self.mapping
        found: dict[Injectate, str] = {}
        unread: list[str] = []
        for med in medications:
            linked = _targets(med.basedOn)
            if not (reading.ref in linked or (not linked and only == reading.ref)):
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
        self.conditions = self._resources(prefetch, "conditions", Condition)
        self.observations = self._resources(prefetch, "observations", Observation)
        self.procedures = self._resources(prefetch, "procedures", FhirProcedure)
        self.general = self._general()

    @staticmethod
    def _resources(prefetch: dict[str, Any], key: str, kind: type) -> list[Any]:
        data = prefetch.get(key)
        if data is None:
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
        latest: dict[tuple[str, str], tuple[str, float, str]] = {}
        for obs in self.observations:
            if obs.status not in FINAL_OBSERVATION or obs.valueQuantity is None or obs.valueQuantity.value is None:
                continue
            when = str(obs.effectiveDateTime or obs.issued or "")
            for key in _codings(obs.code):
                if key in m.observations:
                    unit = obs.valueQuantity.code or obs.valueQuantity.unit or ""
                    if key not in latest or when > latest[key][0]:
                        latest[key] = (when, float(obs.valueQuantity.value), unit)
        for key, (when, value, unit) in latest.items():
            rule = m.observations[key]
            if unit.replace(" ", "") != rule.unit:
                continue  # a BMI in another unit is not compared against a kg/m2 threshold
            if value >= rule.at_least:
                out[rule.variance] = (
                    f"Observation {key[1]} = {value:g} {rule.unit} (at least {rule.at_least:g}){' on ' + when if when else ''}"
                )
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
                if reading.site in sites:
                    reading.variance.add(Variance.PRIOR_SURGERY)
                    label = proc.code.text if proc.code and proc.code.text else "surgical procedure"
                    reading.notes.append(f"anatomy_variance prior_surgery: completed {label} at the {reading.site}")
                    break
        for key in self.missing:
            reading.notes.append(f"prefetch '{key}' was not supplied: anatomy variance from {key} taken as none")
