"""CDS Hooks cards from a Recommendation (or from what an order lacks): pure data in, JSON out."""

from __future__ import annotations

import copy
import re
import uuid
from typing import Any

from guidance_rules._version import __version__
from guidance_rules.model import Modality, Recommendation
from guidance_rules.rulebase.domain import KnowledgeBase

from .fhir import OrderReading
from .mapping import Mapping
from .said import headline, markdown

SUMMARY_LIMIT = 140
LABEL = "guidance-rules"


def _source(knowledge: KnowledgeBase) -> dict[str, Any]:
    return {
        "label": f"{LABEL} {__version__}, rule base {knowledge.version} ({knowledge.digest[:19]}…)",
        "topic": {"system": "urn:guidance-rules:ruleset", "code": knowledge.digest, "display": f"rule base {knowledge.version}"},
    }


def _short(text: str) -> str:
    """At most SUMMARY_LIMIT characters, cut at a word."""
    return text if len(text) < SUMMARY_LIMIT else text[: SUMMARY_LIMIT - 2].rsplit(" ", 1)[0] + "…"


def _headline(problem: str) -> str:
    """A problem's first clause, for the summary: up to ';', a sentence's end (not the dots of a
    code system URL) or a colon after a phrase ('the order names more than one site: ...')."""
    first = re.split(r";|\.(?:\s|$)", problem, maxsplit=1)[0]
    head, colon, _ = first.partition(": ")
    return head if colon and " " in head else first


def _ordered(reading: OrderReading) -> str:
    if reading.unread:
        return f"not known: {', '.join(reading.unread)} placed with it could not be read"
    guidance = reading.ordered_guidance
    if guidance:
        return guidance.value
    return f"not named by code {reading.procedure.code}" if reading.procedure else "not named"


def _cite(sources: Any) -> str:
    return "; ".join(f"{s.source} ({s.locator})" for s in sources)


def detail(rec: Recommendation, reading: OrderReading, knowledge: KnowledgeBase) -> str:
    """The card's Markdown: ratings, reasoning with sources, assumptions, cautions, documentation."""
    lines = [
        f"**Recommended guidance: {rec.modality.value}** (ordered: {_ordered(reading)})",
        "",
        f"_Bottom line:_ {rec.summary.text}",
        "",
        "| modality | rating | rules |",
        "|---|---|---|",
    ]
    for modality in Modality:
        rating = rec.ratings[modality]
        lines.append(f"| {modality.value} | {rating.category.value.replace('_', ' ')} | {', '.join(rating.rules)} |")
    lines += ["", "**Reasoning**", ""]
    for i, step in enumerate(rec.reasoning, 1):
        facts = ", ".join(f"{k}={v}" for k, v in step.facts.items())
        lines.append(f"{i}. `{step.rule}` {step.conclusion} _Facts:_ {facts or 'none'}. _Sources:_ {_cite(step.sources)}")
        lines.extend(f"   - `{r.rule}` {r.conclusion} _Sources:_ {_cite(r.sources)}" for r in step.reasons)
    # every note may quote the request: markdown() keeps what the EHR sent from becoming markup
    assumptions = [markdown(f"{a.field} = {a.value} (from {a.origin})") for a in rec.assumptions] + [markdown(n) for n in reading.notes]
    if assumptions:
        lines += ["", "**Assumptions**", "", *(f"- {a}" for a in assumptions)]
    for title, notes in (("Cautions", rec.cautions), ("Documentation", rec.documentation)):
        if notes:
            lines += ["", f"**{title}**", "", *(f"- {n.text} (`{n.rule}`; {_cite(n.sources)})" for n in notes)]
    if rec.evidence:
        lines += ["", "**Evidence for this site**", ""]
        for ev in rec.evidence:
            figures = ", ".join(
                x for x in (f"ultrasound {ev.ultrasound}" if ev.ultrasound else "", f"landmark {ev.landmark}" if ev.landmark else "") if x
            )
            lines.append(f"- {ev.measure}: {figures or ev.note or ''} ({ev.source.source}, {ev.source.locator})")
    lines += ["", f"_Rule base {knowledge.version}, {knowledge.digest}. Decision support only: the clinician decides._"]
    return "\n".join(lines)


def _coding(mapping: Mapping, code: str) -> dict[str, Any]:
    entry = mapping.procedure_by_code(code)
    return {"system": entry.system, "code": entry.code, "display": entry.display}


def suggestions(consultation_id: str, rec: Recommendation, reading: OrderReading, mapping: Mapping) -> list[dict[str, Any]]:
    """Turn the order into its variant for the recommended modality, where its coding allows."""
    target = rec.modality
    if target == reading.ordered_guidance or reading.unread:  # rewriting one order of a set not read whole could contradict the rest
        return []
    row = mapping.spec.variants.get(reading.family, {})
    if target not in row:
        return []
    codes = list(row[target])
    keep = reading.family in mapping.spec.keep_code_families
    actions: list[dict[str, Any]] = []
    if not keep:
        primary, codes = codes[0], codes[1:]
        if reading.procedure is None or primary != reading.procedure.code:
            updated = copy.deepcopy(reading.resource)
            updated["code"] = {"coding": [_coding(mapping, primary)], "text": mapping.procedure_by_code(primary).display}
            actions.append(
                {"type": "update", "description": f"Change the order to {primary} ({target.value} guidance)", "resource": updated}
            )
    for _, level, resource in reading.levels:  # each additional level follows its first-level code
        code = mapping.spec.level_variants[level.level].get(target)
        if code is None:
            return []  # a half-changed order is worse than none: the card still names the modality
        if code != level.code:
            changed = copy.deepcopy(resource)
            changed["code"] = {"coding": [_coding(mapping, code)], "text": mapping.procedure_by_code(code).display}
            actions.append(
                {
                    "type": "update",
                    "description": f"Change the additional level {level.code} to {code} ({target.value} guidance)",
                    "resource": changed,
                }
            )
    present = {entry.code for _, entry, _ in reading.addons}
    for ref, entry, _ in reading.addons:
        if entry.code not in codes:
            actions.append(
                {"type": "delete", "description": f"Remove the {entry.guidance.value} guidance order {entry.code}", "resourceId": ref}
            )
    for code in codes:
        if code in present:
            continue
        new: dict[str, Any] = {
            "resourceType": "ServiceRequest",
            "status": "draft",
            "intent": "order",
            "code": {"coding": [_coding(mapping, code)]},
            "basedOn": [{"reference": reading.ref}],
        }
        for key in ("subject", "encounter", "bodySite"):
            if key in reading.resource:
                new[key] = copy.deepcopy(reading.resource[key])
        actions.append({"type": "create", "description": f"Add {code}: {mapping.procedure_by_code(code).display}", "resource": new})
    if not actions:
        return []
    return [
        {
            "label": f"Order with {target.value} guidance",
            "uuid": suggestion_uuid(consultation_id, target.value),
            "isRecommended": True,
            "actions": actions,
        }
    ]


def suggestion_uuid(consultation_id: str, modality: str) -> str:
    """A card's suggestion id, derived from the card's: feedback that names a suggestion can be
    checked against the record without storing the card."""
    return str(uuid.uuid5(uuid.UUID(consultation_id), f"suggestion:{modality}"))


def recommendation_card(
    consultation_id: str,
    rec: Recommendation,
    reading: OrderReading,
    mapping: Mapping,
    knowledge: KnowledgeBase,
    available: tuple[str, ...],
    page_link: str | None = None,
) -> dict[str, Any]:
    needed = {Modality.BOTH: {"ultrasound", "fluoroscopy"}, Modality.ULTRASOUND: {"ultrasound"}, Modality.FLUOROSCOPY: {"fluoroscopy"}}
    lacking = needed.get(rec.modality, set()) - set(available)
    matches = rec.modality == reading.ordered_guidance
    indicator = "info" if matches and not lacking else "warning"
    site = knowledge.sites[reading.site].title if reading.site else "this target"
    if matches:
        summary = f"{rec.modality.value.capitalize()} guidance fits this {site.lower()} injection as ordered"
    else:
        ordered = _ordered(reading)
        summary = f"{rec.modality.value.capitalize()} guidance recommended for {site.lower()} injection (ordered: {ordered})"
    if lacking:
        summary += "; not available here: refer"
    card: dict[str, Any] = {
        "uuid": consultation_id,
        "summary": _short(summary),
        "indicator": indicator,
        "detail": detail(rec, reading, knowledge),
        "source": _source(knowledge),
        "overrideReasons": [
            {"system": mapping.spec.override_reasons.system, "code": r.code, "display": r.display}
            for r in mapping.spec.override_reasons.codes
        ],
    }
    if page_link:  # the case on the clinicians' page, to change it and see the answer follow
        card["links"] = [{"label": "Open this case in the guidance page", "url": page_link, "type": "absolute"}]
    found = suggestions(consultation_id, rec, reading, mapping)
    if found:
        card["suggestions"] = found
        card["selectionBehavior"] = "at-most-one"
    return card


def unreadable_card(consultation_id: str, reading: OrderReading, knowledge: KnowledgeBase) -> dict[str, Any]:
    """The order is an injection but the mapping cannot read enough of it: say what is missing."""
    missing = "; ".join(_headline(headline(p)) for p in reading.problems)
    body = ["**No imaging guidance recommendation: the order could not be read well enough.**", "", "What is missing or contradictory:", ""]
    body += [f"- {markdown(p)}" for p in reading.problems]
    if reading.notes:
        body += ["", "Also noted:", "", *(f"- {markdown(n)}" for n in reading.notes)]
    body += ["", "Nothing is guessed: correct the order and the recommendation will follow."]
    return {
        "uuid": consultation_id,
        "summary": _short(f"Guidance not assessed: {missing}"),
        "indicator": "warning",
        "detail": "\n".join(body),
        "source": _source(knowledge),
    }
