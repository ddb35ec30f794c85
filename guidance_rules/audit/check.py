"""The rule-coverage audit: static checks, the whole case space through the real engine,
and the clinical invariants, with a report for people (text, HTML) and machines (JSON).

Findings are `error` (the audit fails) or `warning`. The enumeration runs in worker
processes, each with its own engine; per-rule firing sets travel back as one byte per
case and become big integers, so subsumption and overlap are set operations.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from guidance_rules.audit.explanation import explanation_problems
from guidance_rules.audit.findings import Finding, SpaceResult
from guidance_rules.audit.invariants import (
    Escalation,
    InvariantSet,
    check_case,
    invariant_example_findings,
    invariant_findings,
    load_invariants,
)
from guidance_rules.errors import AuditError, CaseError, EngineError, RuleFileError
from guidance_rules.model import Modality
from guidance_rules.recommendation.explain import Parts
from guidance_rules.recommendation.recommender import Recommender
from guidance_rules.rulebase.conditions import CASE_FIELDS, holds
from guidance_rules.rulebase.domain import KnowledgeBase, Rule
from guidance_rules.rulebase.load import load
from guidance_rules.rulebase.resolve import resolve
from guidance_rules.rulebase.space import EQUIPMENT_SETS, VARIANCE_SETS, Space, as_json_case, audit_spaces, space_named

MODALITIES = tuple(Modality)
INVALID, FAILED = 255, 254
UNEVALUATED = 253  # a case no worker has evaluated yet: never a modality index, so never read as an answer
MAX_LISTED = 25  # violations listed per check; all are counted
SAMPLE_EVERY = 997  # determinism: one case in this many is recomputed in the parent, in reverse order
ENGINE_BATCH = 256  # cases evaluated per engine session in the workers


@dataclass
class AuditReport:
    ruleset: dict[str, str]
    findings: list[Finding]
    spaces: list[SpaceResult]
    rule_counts: dict[str, int]
    modality_counts: dict[str, int]
    seconds: float
    workers: int

    @property
    def passed(self) -> bool:
        return not any(f.level == "error" for f in self.findings)

    def summary(self) -> dict[str, Any]:
        by_check = Counter((f.level, f.check) for f in self.findings)
        return {
            "passed": self.passed,
            "ruleset": self.ruleset,
            "cases": {s.name: {"enumerated": s.size, "evaluated": s.evaluated, "valid": s.valid} for s in self.spaces},
            "modality_counts": self.modality_counts,
            "invariants_covered": dict(sum((s.covered for s in self.spaces), Counter())),
            "rule_firing_counts": self.rule_counts,
            "never_fired": sorted(r for r, n in self.rule_counts.items() if n == 0),
            "finding_counts": {f"{level}:{check}": n for (level, check), n in sorted(by_check.items())},
            "findings": [asdict(f) for f in self.findings],
            "seconds": round(self.seconds, 2),
            "workers": self.workers,
        }


# ---- worker side -----------------------------------------------------------------------

_worker: dict[str, Any] = {}


def _recommender(rules_dir: str) -> Recommender:
    if _worker.get("dir") != rules_dir:
        _worker["dir"] = rules_dir
        _worker["rec"] = Recommender(load(rules_dir), cache_size=0)
        _worker["parts"] = Parts(_worker["rec"].knowledge)
    rec: Recommender = _worker["rec"]
    return rec


def _parts() -> Parts:
    """The worker's explanation builder (the one every answer uses), for the explanation checks."""
    parts: Parts = _worker["parts"]
    return parts


def _resolved(rec: Recommender, case: dict[str, Any]) -> dict[str, Any] | None:
    """Resolved values for one point of a space, or None if the case is contradictory.

    The space yields only well-typed plain values, so pydantic's type checks are skipped;
    the real `resolve` still fills defaults and applies every constraint from the rule base.
    """
    try:
        return dict(resolve(case, rec.knowledge).values)
    except CaseError:
        return None


def evaluate_chunk(rules_dir: str, space_name: str, start: int, stop: int) -> dict[str, Any]:
    """Evaluate cases [start, stop) of a space; return modality codes, firing marks, problems."""
    rec = _recommender(rules_dir)
    explain = _parts()
    kb = rec.knowledge
    space = space_named(space_name, kb)
    invariants = load_invariants(kb)
    breaches: dict[str, Any] = {}
    covered: Counter[str] = Counter()
    rule_ids = [r.id for r in kb.rules]
    marks = {r: bytearray(stop - start) for r in rule_ids}
    modality = bytearray([UNEVALUATED]) * (stop - start)
    heat: Counter[tuple[Any, ...]] = Counter()
    problems: list[dict[str, Any]] = []
    samples: dict[int, str] = {}
    requires = kb.policy.landmark_requires
    pending: list[tuple[int, dict[str, Any], dict[str, Any]]] = []

    def settle() -> None:
        """Evaluate the pending cases in one engine session, then check each."""
        for (i, case, values), ev in zip(pending, rec.evaluate_many([v for _, _, v in pending]), strict=True):
            if isinstance(ev, EngineError):
                modality[i - start] = FAILED
                check = "conflict" if "disagree" in str(ev) else "gap" if "gap" in str(ev) else "engine"
                problems.append({"check": check, "message": str(ev).split(" (case ")[0], "case": case})
                continue
            modality[i - start] = MODALITIES.index(ev.modality)
            for rid in ev.fired:
                marks[rid][i - start] = 1
            heat[(values["injectate"], values["region"], values["depth"], values["tissue"], ev.modality.value, values["site"])] += 1
            check_case(invariants, ev, i, case, breaches, covered)
            if not ev.chain or any(not r.sources for r in ev.chain):
                problems.append({"check": "totality", "message": "no sourced reasoning chain", "case": case})
            if len(set(ev.fired)) != len(ev.fired):
                repeated = sorted({r for r in ev.fired if ev.fired.count(r) > 1})
                problems.append({"check": "repeated-step", "message": f"the chain repeats {', '.join(repeated)}", "case": case})
            if ev.ratings[ev.modality].category.value != "usually_appropriate":
                problems.append(
                    {"check": "chosen-not-appropriate", "message": f"{ev.modality.value} chosen but not usually appropriate", "case": case}
                )
            for check, message in explanation_problems(explain, ev):
                problems.append({"check": check, "message": message, "case": case})
            if ev.modality is Modality.LANDMARK and not ev.values.get(requires, False):
                problems.append({"check": "landmark-unjustified", "message": f"landmark recommended without {requires}", "case": case})
            if i % SAMPLE_EVERY == 0:
                samples[i] = text = rec.recommend_json(as_json_case(case))
                if text != rec.recommend(as_json_case(case)).model_dump_json():  # the joined JSON must be pydantic's, byte for byte
                    problems.append({"check": "json-identical", "message": "joined JSON differs from model_dump_json", "case": case})
        pending.clear()

    for i in range(start, stop):
        case = space.case(i)
        values = _resolved(rec, case)
        if values is None:
            modality[i - start] = INVALID
            continue
        pending.append((i, case, values))
        if len(pending) >= ENGINE_BATCH:
            settle()
    settle()
    return {
        "space": space_name,
        "start": start,
        "stop": stop,
        "modality": bytes(modality),
        "marks": {r: bytes(m) for r, m in marks.items()},
        "heat": heat,
        "problems": problems,
        "samples": samples,
        "breaches": breaches,
        "covered": covered,
    }


# ---- parent side -----------------------------------------------------------------------


def static_findings(kb: KnowledgeBase) -> list[Finding]:
    findings = []
    cited = {loc for r in kb.rules for src, loc in r.cited if src == "article"}
    cited |= {loc for src, loc in kb.policy.cited if src == "article"}
    cited |= {e.locator for s in kb.sites.values() for e in s.evidence if e.source == "article"}
    for prop in kb.propositions():
        if prop not in cited:
            findings.append(Finding("error", "uncited-proposition", f"proposition {prop} is cited by no rule, site record or policy"))
    for site in kb.sites.values():
        if not site.evidence:
            findings.append(Finding("warning", "unsourced-site", f"site '{site.key}' carries no evidence with a source"))
    used = {src for r in kb.rules for src, _ in r.cited} | {e.source for s in kb.sites.values() for e in s.evidence}
    used |= {src for src, _ in kb.policy.cited}
    for source in kb.sources:
        if source not in used:
            findings.append(Finding("warning", "unused-source", f"source '{source}' is cited nowhere"))
    return findings


def cache_findings(rules_dir: str, kb: KnowledgeBase) -> list[Finding]:
    """The rule base as loaded (possibly from the parsed-data cache) must equal one parsed from
    YAML now: a cache may make loading faster, never different."""
    fresh = load(rules_dir, cache=False)

    def shape(base: KnowledgeBase) -> tuple[str, ...]:
        parts = (base.digest, base.rules, base.inactive, base.sites, base.sources, base.constraints, base.policy, base.facts)
        return tuple(repr(part) for part in (*parts, base.tissue_defaults, base.field_defaults, base.identity_fields))

    if shape(fresh) != shape(kb):
        return [Finding("error", "knowledge-cache", "the rule base loaded through the parsed-data cache differs from one parsed now")]
    return []


def statically_dead(kb: KnowledgeBase) -> list[Finding]:
    """Rules whose own tests on case fields contradict each other or a constraint: dead
    whatever the derived facts do. (The enumeration finds the rest.)"""
    findings = []
    for rule in kb.rules:
        tests = [t for t in rule.tests if t.field in CASE_FIELDS]
        fields = sorted({t.field for t in tests})
        if not fields:
            continue
        choices = [VARIANCE_SETS if CASE_FIELDS[f].is_list else CASE_FIELDS[f].values for f in fields]
        relevant = [c for c in kb.constraints if {t.field for t in c.tests} <= set(fields)]
        if not any(
            holds(tests, point) and not any(holds(c.tests, point) for c in relevant)
            for point in (dict(zip(fields, combo, strict=True)) for combo in itertools.product(*choices))
        ):
            findings.append(
                Finding(
                    "error", "dead-rule", f"{rule.id} ({rule.file}) can never fire: its conditions contradict each other or a constraint"
                )
            )
    return findings


def example_findings(rec: Recommender) -> list[Finding]:
    findings = []
    for rule in rec.knowledge.rules:
        for expect, cases in (("fires", rule.fires), ("silent", rule.silent)):
            for case in cases:
                try:
                    fired = rec.evaluate(rec.resolve(case).values).fired
                except (ValidationError, EngineError) as error:
                    findings.append(Finding("error", "rule-example", f"{rule.id}: example {case} fails: {error}", case))
                    continue
                if (rule.id in fired) != (expect == "fires"):
                    verb = "does not fire" if expect == "fires" else "fires"
                    findings.append(Finding("error", "rule-example", f"{rule.id} {verb} on its own '{expect}' example", case))
    return findings


def equipment_findings(rec: Recommender, fired: set[str]) -> list[Finding]:
    """The modality must not depend on `available_modalities`; check every site and injectate
    with every set of equipment. Rules fired here count as exercised (only these cases vary
    the equipment)."""
    findings = []
    for site in rec.knowledge.sites:
        for injectate in CASE_FIELDS["injectate"].values:
            got = {}
            for available in EQUIPMENT_SETS:
                values = rec.resolve({"site": site, "injectate": injectate, "available_modalities": list(available)}).values
                try:
                    ev = rec.evaluate(values)
                except EngineError:
                    continue  # a gap or conflict: the enumeration reports it with its case
                fired.update(ev.fired)
                got[tuple(available)] = ev.modality
            if len(set(got.values())) > 1:
                findings.append(
                    Finding(
                        "error", "equipment", f"modality changes with available_modalities: {got}", {"site": site, "injectate": injectate}
                    )
                )
    return findings


def monotone_findings(space: Space, modality: bytes, escalations: tuple[Escalation, ...]) -> list[Finding]:
    """No escalation (rules/invariants.yaml) may turn an imaging recommendation into landmark:
    check each landmark case against every case one escalation step below it."""
    landmark = MODALITIES.index(Modality.LANDMARK)
    steps = [(e.id, low, high, e.field) for e in escalations if e.field in space.fields for low, high in e.steps]
    position = {f: i for i, f in enumerate(space.fields)}
    strides = space.strides
    findings: list[Finding] = []
    for index, code in enumerate(modality):
        if code != landmark:
            continue
        digits = space.digits(index)
        for invariant, low, high, name in steps:
            i = position[name]
            if space.choices[i][digits[i]] != high:
                continue
            below = index + (space.choices[i].index(low) - digits[i]) * strides[i]
            # a violation is imaging below turned into landmark; landmark staying landmark is none
            if modality[below] < len(MODALITIES) and modality[below] != landmark:
                findings.append(
                    Finding(
                        "error",
                        "monotone",
                        f"{invariant}: changing {name} from {low} to {high} turns {MODALITIES[modality[below]].value} into landmark",
                        space.case(below),
                    )
                )
    return findings


def analyse_marks(kb: KnowledgeBase, marks: dict[str, int], also_fired: set[str]) -> list[Finding]:
    """Dead rules, subsumed rules, and rating rules that overlap with different categories."""
    findings = []
    rules = {r.id: r for r in kb.rules}
    for rid, bits in marks.items():
        if not bits and rid not in also_fired:
            findings.append(Finding("error", "dead-rule", f"{rid} ({rules[rid].file}) never fires on any valid case"))

    def conclusion(rule: Rule) -> Any:
        return rule.derive or rule.text or tuple(sorted(rule.rate.items()))

    ids = [r.id for r in kb.rules if marks.get(r.id)]
    for a in ids:
        for b in ids:
            if a >= b and marks[a] == marks[b]:
                continue
            if a != b and conclusion(rules[a]) == conclusion(rules[b]) and marks[a] & ~marks[b] == 0:
                same = " on exactly the same cases" if marks[a] == marks[b] else ""
                findings.append(
                    Finding(
                        "warning",
                        "subsumed",
                        f"{a} is subsumed by {b}{same}: every case that fires {a} also fires {b}, with the same conclusion",
                    )
                )
    raters = [r for r in kb.rules if r.kind == "rate"]
    for x in raters:
        for y in raters:
            if x.id >= y.id or x.id in y.overrides or y.id in x.overrides:
                continue
            clash = [m.value for m in x.rate if m in y.rate and x.rate[m] != y.rate[m]]
            if clash and marks.get(x.id, 0) & marks.get(y.id, 0):
                findings.append(
                    Finding(
                        "error",
                        "conflict",
                        f"{x.id} and {y.id} rate {', '.join(clash)} differently on overlapping cases and neither overrides the other",
                    )
                )
    return findings


def run_audit(rules_dir: Path | str, workers: int = 0, quick: bool = False, progress: Callable[[int], None] | None = None) -> AuditReport:
    started = time.perf_counter()
    rules_dir = str(Path(rules_dir).resolve())
    try:
        kb = load(rules_dir)
        rec = Recommender(kb, cache_size=0)
    except (RuleFileError, EngineError) as error:
        finding = Finding("error", "load", str(error))
        return AuditReport({"version": "?", "digest": "?"}, [finding], [], {}, {}, time.perf_counter() - started, 0)
    try:
        invariants: InvariantSet = load_invariants(kb)
    except RuleFileError as error:
        finding = Finding("error", "load", str(error))
        return AuditReport({"version": kb.version, "digest": kb.digest}, [finding], [], {}, {}, time.perf_counter() - started, 0)
    equipment_fired: set[str] = set()
    findings = static_findings(kb) + cache_findings(rules_dir, kb) + statically_dead(kb) + example_findings(rec)
    findings += equipment_findings(rec, equipment_fired)
    findings += invariant_example_findings(rec, invariants)
    spaces = audit_spaces(kb, quick)
    workers = workers or os.cpu_count() or 1
    results = {s.name: SpaceResult(s.name, s.size, modality=bytearray([UNEVALUATED]) * s.size) for s in spaces}
    parts: dict[str, dict[str, list[tuple[int, bytes]]]] = {s.name: {r.id: [] for r in kb.rules} for s in spaces}
    jobs = [(rules_dir, s.name, a, b) for s in spaces for a, b in s.chunks(max(4 * workers, s.size // 8000))]
    problems: list[dict[str, Any]] = []
    spans: dict[str, list[tuple[int, int]]] = {s.name: [] for s in spaces}
    context = multiprocessing.get_context("spawn")
    with context.Pool(workers) as pool:
        for out in pool.imap_unordered(_star, jobs):
            result = results[out["space"]]
            start = out["start"]
            spans[out["space"]].append((start, start + len(out["modality"])))
            result.modality[start : start + len(out["modality"])] = out["modality"]
            for rid, bits in out["marks"].items():
                parts[out["space"]][rid].append((start, bits))
            result.heat.update(out["heat"])
            result.samples.update(out["samples"])
            result.covered.update(out["covered"])
            for inv_id, (count, smallest) in out["breaches"].items():
                merged = result.breaches.setdefault(inv_id, [0, []])
                merged[0] += count
                merged[1] = sorted(merged[1] + smallest, key=lambda item: item[0])[:5]
            problems.extend(out["problems"])
            if progress:
                progress(len(out["modality"]))
    findings.extend(_grouped(problems))
    marks: dict[str, int] = dict.fromkeys((r.id for r in kb.rules), 0)
    offset = 0
    for space in spaces:
        result = results[space.name]
        assert_complete(space, spans[space.name], result.modality)
        result.evaluated = space.size
        result.valid = sum(1 for code in result.modality if code != INVALID)
        for rid, chunks in parts[space.name].items():
            joined = b"".join(bits for _, bits in sorted(chunks, key=lambda c: c[0]))
            marks[rid] |= int.from_bytes(joined, "little") << (8 * offset)
        offset += space.size
        findings.extend(_capped(monotone_findings(space, bytes(result.modality), invariants.escalations)))
        findings.extend(determinism_findings(rec, space, result.samples))
    by_marks = analyse_marks(kb, marks, equipment_fired)
    if quick:  # a partial space cannot prove a rule dead or subsumed
        by_marks = [
            Finding("warning", f.check, f"{f.message} (site space only: run without --quick to decide)")
            if f.check in ("dead-rule", "subsumed")
            else f
            for f in by_marks
        ]
    findings.extend(by_marks)
    findings.extend(invariant_findings(rec, invariants, list(results.values()), quick))
    counts = Counter(MODALITIES[c].value for r in results.values() for c in r.modality if c < len(MODALITIES))
    return AuditReport(
        {"version": kb.version, "digest": kb.digest},
        findings,
        list(results.values()),
        {rid: bits.bit_count() + (rid in equipment_fired and not bits) for rid, bits in marks.items()},
        {m.value: counts.get(m.value, 0) for m in MODALITIES},
        time.perf_counter() - started,
        workers,
    )


def assert_complete(space: Space, spans: list[tuple[int, int]], modality: bytes | bytearray) -> None:
    """Prove that every index of the space was evaluated exactly once: the chunks the workers
    returned tile [0, size) with no gap and no overlap, and no case is still UNEVALUATED. An audit
    that cannot prove this raises (a defect in the audit, not in the rule base): a case it never
    evaluated must not be counted, let alone read as an answer."""
    where = 0
    for start, stop in sorted(spans):
        if start != where:
            what = "never evaluated" if start > where else "evaluated twice"
            first, last = min(start, where), max(start, where) - 1
            raise AuditError(f"space {space.name}: cases {first}..{last} were {what} (chunks {sorted(spans)})")
        where = stop
    if where != space.size:
        raise AuditError(f"space {space.name}: cases {where}..{space.size - 1} were never evaluated (the chunks end at {where})")
    left = modality.count(UNEVALUATED)
    if left:
        raise AuditError(
            f"space {space.name}: {left:,} of {space.size:,} cases were never evaluated, the first at index {modality.index(UNEVALUATED)}"
        )


def determinism_findings(rec: Recommender, space: Space, samples: dict[int, str]) -> list[Finding]:
    """Recompute sampled cases here (another process), in reverse order: JSON must match byte for byte."""
    findings = []
    for index in sorted(samples, reverse=True):
        case = as_json_case(space.case(index))
        if rec.recommend_json(case) != samples[index]:
            findings.append(Finding("error", "determinism", "JSON differs between processes", case))
    return findings


def _grouped(problems: list[dict[str, Any]]) -> list[Finding]:
    """One finding per distinct problem, with how many cases show it and the first of them."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for problem in problems:
        groups.setdefault((problem["check"], problem["message"]), []).append(problem["case"])
    return [
        Finding(
            "error", check, f"{message} ({len(cases):,} case{'s' if len(cases) > 1 else ''}; the first is shown)", as_json_case(cases[0])
        )
        for (check, message), cases in sorted(groups.items(), key=lambda item: -len(item[1]))
    ]


def _star(job: tuple[str, str, int, int]) -> dict[str, Any]:
    return evaluate_chunk(*job)


def _capped(findings: list[Finding]) -> list[Finding]:
    if len(findings) <= MAX_LISTED:
        return findings
    extra = Finding(findings[0].level, findings[0].check, f"{len(findings) - MAX_LISTED} further {findings[0].check} findings not listed")
    return [*findings[:MAX_LISTED], extra]
