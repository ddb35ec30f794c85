"""Rule-change impact: every case of the audited space whose answer differs between two rule bases.

Both rule bases are evaluated over the same finite spaces the audit enumerates (built from the one
definition in `space`, so neither can leave one out) plus an equipment space, in worker
processes, each case through each base's own engine, resolution and constraints. A case changed
when its validity, modality, ratings, documentation, cautions or questions differ.
Changed cases are grouped by space, site and old → new modality, each group with its count, which
parts changed, the rules whose firing differs, and its first case as the example. Exit status of
the command: 0 nothing changed, 1 something did, 2 a rule base could not be read.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from guidance_rules.audit.findings import assert_complete
from guidance_rules.errors import CaseError, EngineError
from guidance_rules.recommendation.explain import Evaluation
from guidance_rules.recommendation.pool import RuleBase, worker_pool, worker_recommender
from guidance_rules.recommendation.recommender import Recommender
from guidance_rules.rulebase.conditions import CASE_FIELDS, EQUIPMENT_FIELD
from guidance_rules.rulebase.domain import KnowledgeBase
from guidance_rules.rulebase.load import load
from guidance_rules.rulebase.resolve import resolve
from guidance_rules.rulebase.space import EQUIPMENT_SETS, Space, as_json_case, space_named, space_names

ENGINE_BATCH = 256
INVALID, NO_ANSWER = "invalid", "no answer"  # a contradictory case; a gap or conflict in the rule base
PARTS = ("validity", "modality", "ratings", "documentation", "cautions", "questions")


@dataclass
class Group:
    space: str
    site: str
    old: str
    new: str
    count: int = 0
    parts: Counter[str] = field(default_factory=Counter)
    rules_old_only: Counter[str] = field(default_factory=Counter)  # fired under the old base only
    rules_new_only: Counter[str] = field(default_factory=Counter)
    example: dict[str, Any] | None = None
    first: int = -1  # index of the example in its space

    def as_json(self) -> dict[str, Any]:
        rules = sorted(set(self.rules_old_only) | set(self.rules_new_only))
        return {
            "space": self.space,
            "site": self.site or None,
            "old": self.old,
            "new": self.new,
            "count": self.count,
            "changed": {p: self.parts[p] for p in PARTS if self.parts[p]},
            "rules": {r: {"old_only": self.rules_old_only[r], "new_only": self.rules_new_only[r]} for r in rules},
            "example": self.example,
        }


@dataclass
class DiffReport:
    old: dict[str, str]
    new: dict[str, str]
    cases: dict[str, dict[str, int]]
    groups: list[Group]
    sites_added: list[str]
    sites_removed: list[str]
    cells: dict[str, Counter[tuple[str, ...]]]  # space -> picture cell -> counts of "changed" and "valid"
    seconds: float
    workers: int

    @property
    def changed(self) -> bool:
        return bool(self.groups or self.sites_added or self.sites_removed)

    def summary(self) -> dict[str, Any]:
        return {
            "changed": self.changed,
            "old": self.old,
            "new": self.new,
            "cases": self.cases,
            "changed_cases": sum(g.count for g in self.groups),
            "sites_added": self.sites_added,
            "sites_removed": self.sites_removed,
            "groups": [g.as_json() for g in self.groups],
            "seconds": round(self.seconds, 2),
            "workers": self.workers,
        }


@dataclass
class DiffChunk:
    """What a worker returns for cases [start, stop) of one space: the groups of changed cases,
    the picture's cell counts, and how many cases each base finds valid."""

    space: str
    start: int
    stop: int
    groups: list[Group] = field(default_factory=list)
    cells: Counter[tuple[str, ...]] = field(default_factory=Counter)
    valid: Counter[str] = field(default_factory=Counter)  # "old" and "new"

    def merge_into(self, merged: dict[tuple[str, str, str, str], Group], cases: dict[str, int], cells: Counter[tuple[str, ...]]) -> None:
        """Add this chunk to the report's groups (the example is the changed case of lowest index), counts and cells."""
        cells.update(self.cells)
        cases["valid_old"] += self.valid["old"]
        cases["valid_new"] += self.valid["new"]
        for g in self.groups:
            group = merged.setdefault((g.space, g.site, g.old, g.new), Group(g.space, g.site, g.old, g.new))
            group.count += g.count
            cases["changed"] += g.count
            group.parts.update(g.parts)
            group.rules_old_only.update(g.rules_old_only)
            group.rules_new_only.update(g.rules_new_only)
            if group.first < 0 or g.first < group.first:
                group.example, group.first = g.example, g.first


# ---- worker side -----------------------------------------------------------------------


def diff_spaces(old: KnowledgeBase, new: KnowledgeBase, only: tuple[str, ...] | None = None) -> list[Space]:
    """The audit's spaces (`space_names`, the definition the audit uses too) over the sites both
    bases know, each the merge of the two bases' versions, then a small equipment space. With
    `only`, as the audit's --quick: the spaces with a site, narrowed to those sites."""
    common = tuple(s for s in new.sites if s in old.sites and (only is None or s in only))
    merged = (space_named(name, old, common).merged(space_named(name, new, common)) for name in space_names(quick=only is not None))
    # The audit varies equipment in a check of its own; here it is one more, small space.
    equipment = Space("equipment", ("site", "injectate", EQUIPMENT_FIELD), (common, CASE_FIELDS["injectate"].values, EQUIPMENT_SETS))
    return [s for s in (*merged, equipment) if s.size]


def _resolved(rec: Recommender, cases: list[dict[str, Any]]) -> list[dict[str, Any] | None]:
    out: list[dict[str, Any] | None] = []
    for case in cases:
        try:
            out.append(dict(resolve(case, rec.knowledge).values))
        except CaseError:
            out.append(None)
    return out


def _evaluated(rec: Recommender, resolved: list[dict[str, Any] | None]) -> list[Evaluation | str]:
    """Per case its Evaluation, or INVALID / NO_ANSWER."""
    live: list[Mapping[str, Any]] = [v for v in resolved if v is not None]
    evaluations = iter(rec.evaluate_many(live)) if live else iter(())
    out: list[Evaluation | str] = []
    for values in resolved:
        if values is None:
            out.append(INVALID)
            continue
        ev = next(evaluations)
        out.append(NO_ANSWER if isinstance(ev, EngineError) else ev)
    return out


def _resolution_inputs(kb: KnowledgeBase) -> tuple[Any, ...]:
    """Everything `resolve` reads: equal for both bases means every case resolves alike."""
    sites = tuple((key, tuple(sorted(site.defaults.items()))) for key, site in kb.sites.items())
    tissue = tuple(sorted((t, tuple(sorted(d.items()))) for t, d in kb.tissue_defaults.items()))
    return (sites, tissue, tuple(sorted(kb.field_defaults.items(), key=str)), kb.constraints, kb.identity_fields)


def _same_rules(old: KnowledgeBase, new: KnowledgeBase) -> frozenset[str]:
    """Ids of rules whose every part that shapes an answer (kind, conclusion, rating, overrides,
    note text) is the same in both bases: two evaluations firing only these, in the same
    order, give the same ratings, modality and notes."""
    by_id = {r.id: r for r in new.rules}

    def shape(rule: Any) -> tuple[Any, ...]:
        return (rule.kind, rule.derive, tuple(sorted(rule.rate.items())), rule.overrides, rule.text)

    return frozenset(r.id for r in old.rules if r.id in by_id and shape(r) == shape(by_id[r.id]))


def _parts(ev: Evaluation) -> dict[str, Any]:
    notes: dict[str, list[tuple[str, str | None]]] = {"documentation": [], "caution": [], "question": []}
    for rule in ev.outputs:
        notes[rule.kind].append((rule.id, rule.text))
    return {
        "ratings": tuple((m.value, r.category.value, r.rules) for m, r in sorted(ev.ratings.items())),
        "documentation": tuple(notes["documentation"]),
        "cautions": tuple(notes["caution"]),
        "questions": tuple(notes["question"]),
    }


def _cell(space: Space, case: dict[str, Any]) -> tuple[str, ...]:
    """Where a case sits in the picture: site x injectate, site and approach x injectate, or
    region/depth x tissue per injectate."""
    if space.name == "free":
        return (case["injectate"], f"{case['region']} {case['depth']}", case["tissue"])
    if "approach" in case:
        return (f"{case['site']} {case['approach']}", case["injectate"])
    return (case["site"], case["injectate"])


def diff_chunk(old_base: RuleBase, new_base: RuleBase, space: Space, start: int, stop: int) -> DiffChunk:
    """Compare cases [start, stop) of one space under both rule bases."""
    old, new = worker_recommender(old_base), worker_recommender(new_base)
    same_resolution = _resolution_inputs(old.knowledge) == _resolution_inputs(new.knowledge)
    same_rules = _same_rules(old.knowledge, new.knowledge)
    out = DiffChunk(space.name, start, stop)
    groups: dict[tuple[str, str, str], Group] = {}
    cells, valid = out.cells, out.valid
    for block in range(start, stop, ENGINE_BATCH):
        indices = range(block, min(block + ENGINE_BATCH, stop))
        cases = list(space.cases(indices.start, indices.stop))
        resolved_old = _resolved(old, cases)
        resolved_new = resolved_old if same_resolution else _resolved(new, cases)
        evaluated = zip(_evaluated(old, resolved_old), _evaluated(new, resolved_new), strict=True)
        for i, case, (ev_old, ev_new) in zip(indices, cases, evaluated, strict=True):
            valid["old"] += ev_old is not INVALID
            valid["new"] += ev_new is not INVALID
            cell = _cell(space, case)
            if ev_old is not INVALID or ev_new is not INVALID:
                cells[(*cell, "valid")] += 1
            if isinstance(ev_old, Evaluation) and isinstance(ev_new, Evaluation):
                fired = ev_old.fired
                if fired == ev_new.fired and same_rules.issuperset(fired):
                    continue  # the same unchanged rules fired: the same answer (fast path)
            elif ev_old == ev_new:
                continue
            before, after = _outcome(ev_old), _outcome(ev_new)
            parts = [p for p in PARTS if _differs(p, before, after)]
            if not parts:
                continue
            cells[(*cell, "changed")] += 1
            site = case.get("site") or ""
            group = groups.get((site, before[0], after[0]))
            if group is None:
                group = groups[(site, before[0], after[0])] = Group(space.name, site, before[0], after[0])
                group.example, group.first = as_json_case(case), i
            group.count += 1
            group.parts.update(parts)
            group.rules_old_only.update(before[2] - after[2])
            group.rules_new_only.update(after[2] - before[2])
    out.groups = list(groups.values())
    return out


def _outcome(ev: Evaluation | str) -> tuple[Any, ...]:
    """(modality or INVALID / NO_ANSWER, signature of each part, fired rule ids)."""
    if isinstance(ev, str):
        return (ev, None, frozenset())
    return (ev.modality.value, _parts(ev), frozenset(ev.fired))


def _differs(part: str, before: tuple[Any, ...], after: tuple[Any, ...]) -> bool:
    if part == "validity":
        return bool((before[0] == INVALID) != (after[0] == INVALID))
    if part == "modality":
        return bool(before[0] != after[0])
    if before[1] is None or after[1] is None:
        return False  # no answer on one side: the modality part already says so
    return bool(before[1][part] != after[1][part])


def _star(job: tuple[RuleBase, RuleBase, Space, int, int]) -> DiffChunk:
    return diff_chunk(*job)


# ---- parent side -----------------------------------------------------------------------


def run_diff(old_dir: Path | str, new_dir: Path | str, workers: int = 0, sites: Sequence[str] | None = None) -> DiffReport:
    """Evaluate both rule bases over the whole case space (with `sites`: only the site cases
    of those sites); raise RuleFileError if one cannot load."""
    started = time.perf_counter()
    old_path, new_path = str(Path(old_dir).resolve()), str(Path(new_dir).resolve())
    old, new = load(old_path), load(new_path)
    Recommender(old, cache_size=0), Recommender(new, cache_size=0)  # compile errors surface here, once
    only = tuple(sites) if sites is not None else None
    unknown = sorted(set(only or ()) - set(old.sites) - set(new.sites))
    if unknown:
        raise CaseError(("site",), f"site '{unknown[0]}' is in neither rule base; sites: {', '.join(new.sites)}", "unknown_site")
    spaces = diff_spaces(old, new, only)
    workers = workers or os.cpu_count() or 1
    bases = RuleBase(old_path, old.digest), RuleBase(new_path, new.digest)
    jobs = [(*bases, s, a, b) for s in spaces for a, b in s.chunks(max(4 * workers, s.size // 8000))]
    merged: dict[tuple[str, str, str, str], Group] = {}
    cells: dict[str, Counter[tuple[str, ...]]] = {s.name: Counter() for s in spaces}
    cases = {s.name: {"enumerated": s.size, "valid_old": 0, "valid_new": 0, "changed": 0} for s in spaces}
    spans: dict[str, list[tuple[int, int]]] = {s.name: [] for s in spaces}
    with worker_pool(workers, bases) as pool:
        for chunk in pool.imap_unordered(_star, jobs):
            chunk.merge_into(merged, cases[chunk.space], cells[chunk.space])
            spans[chunk.space].append((chunk.start, chunk.stop))
    for s in spaces:  # the chunks tile each space: a diff never reads a partial enumeration as complete
        assert_complete(s.name, s.size, spans[s.name], b"")
    groups = sorted(merged.values(), key=lambda g: (-g.count, g.space, g.site, g.old, g.new))
    return DiffReport(
        {"version": old.version, "digest": old.digest},
        {"version": new.version, "digest": new.digest},
        cases,
        groups,
        sorted(set(new.sites) - set(old.sites)),
        sorted(set(old.sites) - set(new.sites)),
        cells,
        time.perf_counter() - started,
        workers,
    )
