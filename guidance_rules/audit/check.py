"""The rule-coverage audit: static checks, the whole case space through the real engine,
and the clinical invariants, with a report for people (text, HTML) and machines (JSON).

Findings are `error` (the audit fails) or `warning`. The enumeration runs in worker
processes, each with its own engine; per-rule firing sets travel back as one byte per
case and become big integers, so subsumption and overlap are set operations.
"""

from __future__ import annotations

import itertools
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, cast

from pydantic import ValidationError

from guidance_rules.audit.explanation import Fit, explanation_problems
from guidance_rules.audit.findings import UNEVALUATED, Breach, Chunk, Finding, Seen, SpaceResult
from guidance_rules.audit.findings import assert_complete as findings_complete
from guidance_rules.audit.invariants import (
    Escalation,
    InvariantSet,
    answer_of,
    invariant_example_findings,
    invariant_findings,
    load_invariants,
    weight,
)
from guidance_rules.errors import CaseError, EngineError, RuleFileError
from guidance_rules.model import Modality, Step
from guidance_rules.recommendation.cache import Memo
from guidance_rules.recommendation.explain import Evaluation, Parts
from guidance_rules.recommendation.pool import RuleBase, worker_pool, worker_recommender
from guidance_rules.recommendation.recommender import Recommender
from guidance_rules.rulebase.conditions import CASE_FIELDS, holds
from guidance_rules.rulebase.domain import KnowledgeBase, Rule
from guidance_rules.rulebase.load import load
from guidance_rules.rulebase.resolve import resolve
from guidance_rules.rulebase.space import EQUIPMENT_SETS, VARIANCE_SETS, Space, as_json_case, audit_spaces

MODALITIES = tuple(Modality)
CODES = {m: i for i, m in enumerate(MODALITIES)}
INVALID, FAILED = 255, 254
__all__ = ["FAILED", "INVALID", "UNEVALUATED", "AuditReport", "assert_complete", "evaluate_chunk", "run_audit"]
MAX_LISTED = 25  # violations listed per check; all are counted
SAMPLE_EVERY = 997  # determinism: one case in this many is recomputed in the parent, in reverse order
VERDICTS = 65_536  # distinct check inputs kept per worker (emptied when full: exact, a miss only recomputes)
ENGINE_BATCH = 256  # cases evaluated together in the workers
ABSENT: Any = object()  # a field a case does not have, as `Reads` records it


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


@dataclass(frozen=True)
class Coverage:
    """The invariants that cover a case and those it breaks (with what failed), the same for every
    case with the same values of the fields the invariants test, ratings and notes."""

    covers: tuple[str, ...]
    breaks: tuple[tuple[str, str], ...]  # (invariant id, what failed)


class Reads(Mapping[str, Any]):
    """A case's values as the answer's checks read them, recording each field read and its value
    (a field absent from the case as ABSENT). Anything that would see every field (iteration,
    length) sets `whole`: such a reading has no smaller key."""

    __slots__ = ("read", "source", "whole")

    def __init__(self, values: Mapping[str, Any]) -> None:
        self.source = values
        self.read: dict[str, Any] = {}
        self.whole = False

    def __getitem__(self, name: str) -> Any:
        value = self.source.get(name, ABSENT)
        self.read.setdefault(name, value)
        if value is ABSENT:
            raise KeyError(name)
        return value

    def get(self, name: str, default: Any = None) -> Any:
        value = self.source.get(name, ABSENT)
        self.read.setdefault(name, value)
        return default if value is ABSENT else value

    def __contains__(self, name: object) -> bool:
        return self.get(name, ABSENT) is not ABSENT  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[str]:
        self.whole = True
        return iter(self.source)

    def __len__(self) -> int:
        self.whole = True
        return len(self.source)


class Checker:
    """The per-case checks of one rule base, each conclusion computed once per distinct input.

    Two kinds of check, each keyed by exactly what it reads. The answer's own checks (totality,
    repeated steps, the chosen rating, landmark justified, and the explanation as the reader sees
    it, built by `Parts.reasoning`) read the chain, the notes, the ratings and some of the
    values: they run once on a recording view of the values (`Reads`), and their conclusion is
    kept under the chain and the fields they read with the values they had. A case with the same
    chain whose values agree on those fields would be read the same way, field by field, to the
    same conclusion (the checks are deterministic given what they read), so it gets it without
    building its explanation. The invariants read the fields they test, the ratings and the notes
    they require. Per case there remain the codes, the firing marks, and the counterexamples of a
    broken invariant."""

    def __init__(self, rec: Recommender) -> None:
        kb = rec.knowledge
        self.rec = rec
        self.parts = Parts(kb)  # the explanation builder every answer uses
        self.fit = Fit(kb)
        self.invariants = load_invariants(kb)
        self.requires = kb.policy.landmark_requires
        self.tested = tuple(sorted({t.field for inv in self.invariants.invariants for t in (*inv.tests, *inv.hold)}))
        self.notes = frozenset(rule for inv in self.invariants.invariants for rule in inv.notes)
        # chain -> the field lists its checks have read (usually one); (chain, fields, values) -> conclusion
        self.readings: dict[tuple[Any, ...], list[tuple[str, ...]]] = {}
        self.answers: Memo[tuple[Any, ...], tuple[tuple[str, str], ...]] = Memo(VERDICTS)
        self.coverage: Memo[tuple[Any, ...], Coverage] = Memo(VERDICTS)

    def problems(self, ev: Evaluation) -> tuple[tuple[str, str], ...]:
        """(check, message) for each fault of this answer and its explanation, from the memo when a
        case with the same chain agreed on every field the checks read."""
        head = (
            tuple([r.id for r in ev.chain]),
            tuple([r.id for r in ev.outputs]),
            ev.modality,
            tuple([r.category for r in ev.ratings.values()]),
        )
        get = ev.values.get
        for fields in self.readings.get(head, ()):
            found = self.answers.get((head, fields, tuple([get(f, ABSENT) for f in fields])))
            if found is not None:
                return found
        reads = Reads(ev.values)
        seen = Evaluation(cast("dict[str, Any]", reads), ev.chain, ev.ratings, ev.modality, ev.outputs)
        problems = self._problems(seen, self.parts.reasoning(seen))
        if not reads.whole:
            if len(self.answers) >= VERDICTS:
                self.readings.clear()
            fields = tuple(reads.read)
            known = self.readings.setdefault(head, [])
            if fields not in known:
                known.append(fields)
            self.answers.put((head, fields, tuple(reads.read.values())), problems)
        return problems

    def covered(self, ev: Evaluation) -> Coverage:
        """The invariants that cover this case, and those it breaks."""
        get = ev.values.get
        ratings = tuple([r.category for r in ev.ratings.values()])
        key = (tuple([get(f) for f in self.tested]), ratings, tuple([r.id for r in ev.outputs if r.id in self.notes]))
        found = self.coverage.get(key)
        if found is None:
            found = self._coverage(ev)
            self.coverage.put(key, found)
        return found

    def _problems(self, ev: Evaluation, steps: tuple[Step, ...]) -> tuple[tuple[str, str], ...]:
        problems: list[tuple[str, str]] = []
        if not ev.chain or any(not r.sources for r in ev.chain):
            problems.append(("totality", "no sourced reasoning chain"))
        fired = ev.fired
        if len(set(fired)) != len(fired):
            problems.append(("repeated-step", f"the chain repeats {', '.join(sorted({r for r in fired if fired.count(r) > 1}))}"))
        if ev.ratings[ev.modality].category.value != "usually_appropriate":
            problems.append(("chosen-not-appropriate", f"{ev.modality.value} chosen but not usually appropriate"))
        problems.extend(explanation_problems(self.parts, ev, self.fit, steps))
        if ev.modality is Modality.LANDMARK and not ev.values.get(self.requires, False):
            problems.append(("landmark-unjustified", f"landmark recommended without {self.requires}"))
        return tuple(problems)

    def _coverage(self, ev: Evaluation) -> Coverage:
        covers, breaks = [], []
        answer = answer_of(ev)
        for invariant in self.invariants.invariants:
            if invariant.applies(ev.values):
                covers.append(invariant.id)
                problem = invariant.breach(answer)
                if problem is not None:
                    breaks.append((invariant.id, problem))
        return Coverage(tuple(covers), tuple(breaks))


_checkers: dict[RuleBase, Checker] = {}


def _checker(base: RuleBase) -> Checker:
    rec = worker_recommender(base)
    found = _checkers.get(base)
    if found is None or found.rec is not rec:
        _checkers.clear()  # one rule base at a time in the audit's workers
        found = _checkers[base] = Checker(rec)
    return found


def _resolved(rec: Recommender, case: dict[str, Any]) -> Mapping[str, Any] | None:
    """Resolved values for one point of a space, or None if the case is contradictory.

    The space yields only well-typed plain values, so pydantic's type checks are skipped;
    the real `resolve` still fills defaults and applies every constraint from the rule base.
    """
    try:
        return resolve(case, rec.knowledge).values
    except CaseError:
        return None


def evaluate_chunk(base: RuleBase, space: Space, start: int, stop: int) -> Chunk:
    """Evaluate cases [start, stop) of a space: a code for each, the rules that fired, what the checks found."""
    checker = _checker(base)
    rec = checker.rec
    chunk = Chunk.empty(space.name, start, stop, [r.id for r in rec.knowledge.rules])
    modality, marks, heat = chunk.modality, chunk.marks, chunk.heat
    tally: Counter[Coverage] = Counter()
    pending: list[tuple[int, dict[str, Any], Mapping[str, Any]]] = []

    def settle() -> None:
        """Evaluate the pending cases in one engine session, then check each."""
        for (i, case, values), ev in zip(pending, rec.evaluate_many([v for _, _, v in pending]), strict=True):
            at = i - start
            if isinstance(ev, EngineError):
                modality[at] = FAILED
                check = "conflict" if "disagree" in str(ev) else "gap" if "gap" in str(ev) else "engine"
                chunk.problem(check, str(ev).split(" (case ")[0], i, case)
                continue
            modality[at] = CODES[ev.modality]
            for rid in ev.fired:
                marks[rid][at] = 1
            heat[(values["injectate"], values["region"], values["depth"], values["tissue"], ev.modality.value, values["site"])] += 1
            for check, message in checker.problems(ev):
                chunk.problem(check, message, i, case)
            coverage = checker.covered(ev)
            tally[coverage] += 1
            if coverage.breaks:
                weighed = (weight(case), i)
                for inv_id, problem in coverage.breaks:
                    chunk.breaches.setdefault(inv_id, Breach()).add(weighed, case, problem)
            if i % SAMPLE_EVERY == 0:
                chunk.samples[i] = text = rec.recommend_json(as_json_case(case))
                if text != rec.recommend(as_json_case(case)).model_dump_json():  # the joined JSON must be pydantic's, byte for byte
                    chunk.problem("json-identical", "joined JSON differs from model_dump_json", i, case)
        pending.clear()

    for i, case in zip(range(start, stop), space.cases(start, stop), strict=True):
        values = _resolved(rec, case)
        if values is None:
            modality[i - start] = INVALID
            continue
        pending.append((i, case, values))
        if len(pending) >= ENGINE_BATCH:
            settle()
    settle()
    for coverage, n in tally.items():
        for inv_id in coverage.covers:
            chunk.covered[inv_id] += n
    return chunk.fired_only()


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


def equipment_findings(rec: Recommender, fired: set[str], sites: Sequence[str] | None = None) -> list[Finding]:
    """The modality must not depend on `available_modalities`; check every site and injectate
    with every set of equipment. Rules fired here count as exercised (only these cases vary
    the equipment)."""
    findings = []
    for site in rec.knowledge.sites if sites is None else [s for s in rec.knowledge.sites if s in sites]:
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


def run_audit(
    rules_dir: Path | str,
    workers: int = 0,
    quick: bool = False,
    progress: Callable[[int], None] | None = None,
    sites: Sequence[str] | None = None,
) -> AuditReport:
    """The whole audit; with `quick`, the spaces with a site only; with `sites`, those narrowed to
    these sites (a partial enumeration: what only the whole space can decide becomes a warning)."""
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
    only = tuple(sites) if sites is not None else None
    partial = quick or only is not None
    findings += equipment_findings(rec, equipment_fired, only)
    findings += invariant_example_findings(rec, invariants)
    spaces = audit_spaces(kb, quick, only)
    workers = workers or os.cpu_count() or 1
    results = {s.name: SpaceResult(s.name, s.size) for s in spaces}
    base = RuleBase(rules_dir, kb.digest)
    jobs = [(base, s, a, b) for s in spaces for a, b in s.chunks(max(4 * workers, s.size // 8000))]
    problems: dict[tuple[str, str], Seen] = {}
    with worker_pool(workers, [base]) as pool:
        for chunk in pool.imap_unordered(_star, jobs):
            results[chunk.space].merge(chunk)
            for key, seen in chunk.problems.items():
                if key in problems:
                    problems[key].add(seen)
                else:
                    problems[key] = seen
            if progress:
                progress(len(chunk.modality))
    findings.extend(_grouped(problems))
    marks: dict[str, int] = dict.fromkeys((r.id for r in kb.rules), 0)
    offset = 0
    for space in spaces:
        result = results[space.name]
        result.complete(INVALID)  # raises AuditError unless every index was evaluated exactly once
        for rid, bits in result.marks.items():
            marks[rid] |= bits << (8 * offset)
        offset += space.size
        findings.extend(_capped(monotone_findings(space, bytes(result.modality), invariants.escalations)))
        findings.extend(determinism_findings(rec, space, result.samples))
    by_marks = analyse_marks(kb, marks, equipment_fired)
    if partial:  # a partial space cannot prove a rule dead or subsumed
        by_marks = [
            Finding(
                "warning",
                f.check,
                f"{f.message} ({'some sites' if only is not None else 'site space'} only: run without --quick to decide)",
            )
            if f.check in ("dead-rule", "subsumed")
            else f
            for f in by_marks
        ]
    findings.extend(by_marks)
    findings.extend(invariant_findings(rec, invariants, list(results.values()), partial))
    return AuditReport(
        {"version": kb.version, "digest": kb.digest},
        findings,
        list(results.values()),
        {rid: bits.bit_count() + (rid in equipment_fired and not bits) for rid, bits in marks.items()},
        {m.value: sum(r.modality.count(CODES[m]) for r in results.values()) for m in MODALITIES},
        time.perf_counter() - started,
        workers,
    )


def assert_complete(space: Space, spans: list[tuple[int, int]], modality: bytes | bytearray) -> None:
    """Prove that every index of the space was evaluated exactly once (`findings.assert_complete`)."""
    findings_complete(space.name, space.size, spans, modality)


def determinism_findings(rec: Recommender, space: Space, samples: dict[int, str]) -> list[Finding]:
    """Recompute sampled cases here (another process), in reverse order: JSON must match byte for byte."""
    findings = []
    for index in sorted(samples, reverse=True):
        case = as_json_case(space.case(index))
        if rec.recommend_json(case) != samples[index]:
            findings.append(Finding("error", "determinism", "JSON differs between processes", case))
    return findings


def _grouped(problems: dict[tuple[str, str], Seen]) -> list[Finding]:
    """One finding per distinct problem, with how many cases show it and the first of them."""
    return [
        Finding(
            "error", check, f"{message} ({seen.count:,} case{'s' if seen.count > 1 else ''}; the first is shown)", as_json_case(seen.case)
        )
        for (check, message), seen in sorted(problems.items(), key=lambda item: (-item[1].count, item[0]))
    ]


def _star(job: tuple[RuleBase, Space, int, int]) -> Chunk:
    return evaluate_chunk(*job)


def _capped(findings: list[Finding]) -> list[Finding]:
    if len(findings) <= MAX_LISTED:
        return findings
    extra = Finding(findings[0].level, findings[0].check, f"{len(findings) - MAX_LISTED} further {findings[0].check} findings not listed")
    return [*findings[:MAX_LISTED], extra]
