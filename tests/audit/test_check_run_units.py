"""The whole audit (`run_audit`) run in this process on small spaces (issue 24).

Two test seams, no change to the audit: the worker pool is a stand-in that runs each job here, in
reverse order (workers finish in any order), so mutation testing sees the worker side; and each
space the audit enumerates is narrowed to a few of its fields' values (the rest at their first
value), so one audit takes about a second. Each result is compared with the recommender's own
answers for the same cases, or with the fault planted in a copy of the rule files."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from guidance_rules.audit import check
from guidance_rules.audit.check import MAX_LISTED, MODALITIES, AuditReport, run_audit
from guidance_rules.audit.findings import Finding
from guidance_rules.errors import CaseError, EngineError
from guidance_rules.model import Modality
from guidance_rules.recommendation.pool import RuleBase, worker_recommender
from guidance_rules.recommendation.recommender import Recommender
from guidance_rules.rulebase.conditions import CASE_FIELDS
from guidance_rules.rulebase.domain import KnowledgeBase
from guidance_rules.rulebase.load import default_rules_dir, load
from guidance_rules.rulebase.resolve import resolve
from guidance_rules.rulebase.space import EQUIPMENT_SETS, Space, as_json_case, audit_spaces
from tests.conftest import find_rule

SHIPPED = str(default_rules_dir().resolve())


@dataclasses.dataclass
class Seam:
    """What the stand-in pool saw, and the fields each narrowed space keeps whole."""

    keep: set[str]
    opened: list[tuple[int, list[RuleBase]]] = dataclasses.field(default_factory=list)
    spaces: list[Space] = dataclasses.field(default_factory=list)
    progress: list[int] = dataclasses.field(default_factory=list)


class InProcess:
    def imap_unordered(self, f: Callable[[Any], Any], jobs: Iterable[Any]) -> Iterator[Any]:
        return map(f, reversed(list(jobs)))


@pytest.fixture
def seam(monkeypatch: pytest.MonkeyPatch) -> Seam:
    seen = Seam({"site", "approach", "injectate"})
    real = audit_spaces

    def narrowed(kb: KnowledgeBase, quick: bool = False, sites: Any = None) -> list[Space]:
        spaces = real(kb, quick, sites)
        seen.spaces = [
            Space(s.name, s.fields, tuple(c if f in seen.keep else c[:1] for f, c in zip(s.fields, s.choices, strict=True))) for s in spaces
        ]
        return seen.spaces

    class Pool:
        def __init__(self, workers: int, bases: list[RuleBase]) -> None:
            seen.opened.append((workers, list(bases)))

        def __enter__(self) -> InProcess:
            return InProcess()

        def __exit__(self, *exc: object) -> None:
            return None

    monkeypatch.setattr(check, "audit_spaces", narrowed)
    monkeypatch.setattr(check, "worker_pool", Pool)
    monkeypatch.setattr(check, "_checkers", {})
    return seen


def audit(seam: Seam, folder: str | Path = SHIPPED, **options: Any) -> AuditReport:
    """The audit, whose reported duration must be within the time the call took."""
    started = time.perf_counter()
    report = run_audit(folder, progress=seam.progress.append, **options)
    assert 0 <= report.seconds <= time.perf_counter() - started
    return report


@dataclasses.dataclass
class Oracle:
    """Each case of the narrowed spaces answered on its own."""

    valid: dict[str, int]
    modalities: Counter[str]
    fired: Counter[str]


def oracle(rec: Recommender, spaces: list[Space]) -> Oracle:
    out = Oracle({}, Counter(), Counter())
    for space in spaces:
        out.valid[space.name] = 0
        for i in range(space.size):
            try:
                values = resolve(space.case(i), rec.knowledge).values
            except CaseError:
                continue
            out.valid[space.name] += 1
            ev = rec.evaluate(values)
            out.modalities[ev.modality.value] += 1
            out.fired.update(set(ev.fired))
    return out


def equipment_fired(rec: Recommender, sites: Iterable[str]) -> set[str]:
    """The rules fired by the equipment check's cases: each site and injectate with each set of equipment."""
    fired: set[str] = set()
    for site in sites:
        for injectate in CASE_FIELDS["injectate"].values:
            for available in EQUIPMENT_SETS:
                fired.update(
                    rec.evaluate(rec.resolve({"site": site, "injectate": injectate, "available_modalities": list(available)}).values).fired
                )
    return fired


def messages(report: AuditReport, check_name: str, level: str = "error") -> list[str]:
    return [f.message for f in report.findings if f.check == check_name and f.level == level]


def test_the_shipped_rules_over_two_sites(seam: Seam) -> None:
    seam.keep |= {"palpable"}  # a palpable hip contradicts the site: invalid cases
    unresolved = Path(SHIPPED, "..", Path(SHIPPED).name)  # the folder as given; workers get it resolved
    report = audit(seam, unresolved, workers=1, quick=True, sites=["knee", "hip"])
    kb = load(SHIPPED)
    rec = Recommender(kb, cache_size=0)
    want = oracle(rec, seam.spaces)
    assert report.passed, [f for f in report.findings if f.level == "error"]
    assert report.ruleset == {"version": kb.version, "digest": kb.digest}
    assert (report.workers, seam.opened) == (1, [(1, [RuleBase(SHIPPED, kb.digest)])])
    assert [(s.name, s.size, s.evaluated, s.valid) for s in report.spaces] == [
        (s.name, s.size, s.size, want.valid[s.name]) for s in seam.spaces
    ]
    assert [s.name for s in seam.spaces] == ["sites", "approach"] and 0 < want.valid["sites"] < seam.spaces[0].size
    assert sum(seam.progress) == sum(s.size for s in seam.spaces) and len(seam.progress) > 2
    assert report.modality_counts == {m.value: want.modalities[m.value] for m in MODALITIES}
    extra = equipment_fired(rec, ["knee", "hip"]) - set(want.fired)
    assert extra  # rules only the equipment check fires count once
    assert report.rule_counts == {r.id: want.fired[r.id] or int(r.id in extra) for r in kb.rules}
    dead = {m.split(" ")[0] for m in messages(report, "dead-rule", "warning")}
    assert dead == {rid for rid, n in report.rule_counts.items() if n == 0} and dead
    assert all(m.endswith("(some sites only: run without --quick to decide)") for m in messages(report, "dead-rule", "warning"))
    assert messages(report, "dead-rule") == [] and messages(report, "subsumed", "warning")
    assert all(f.check in ("dead-rule", "subsumed", "unused-source", "unsourced-site") for f in report.findings)
    summary = report.summary()
    assert summary["never_fired"] == sorted(dead) and summary["passed"] is True
    assert summary["invariants_covered"]
    subsumed = messages(report, "subsumed", "warning")
    assert all(m.endswith("(some sites only: run without --quick to decide)") for m in subsumed)


def test_the_site_space_only(seam: Seam) -> None:
    """--quick without sites: every site, the warnings say the site space was enumerated; workers
    default to the CPUs."""
    seam.keep = {"site"}
    report = audit(seam, quick=True)
    assert report.workers == (os.cpu_count() or 1) == seam.opened[0][0]
    assert [s.name for s in report.spaces] == ["sites", "approach"] and report.spaces[0].size == len(load(SHIPPED).sites)
    dead = messages(report, "dead-rule", "warning")
    assert dead and all(m.endswith("(site space only: run without --quick to decide)") for m in dead)
    subsumed = messages(report, "subsumed", "warning")
    assert subsumed and all(m.endswith("(site space only: run without --quick to decide)") for m in subsumed)
    assert report.passed and messages(report, "invariant-vacuous", "warning") == []  # a partial space proves no vacuity


def test_the_whole_space_decides_dead_rules(seam: Seam) -> None:
    """Without --quick or sites, a rule no enumerated case fires is an error."""
    seam.keep = {"site", "region"}
    report = audit(seam, workers=2)
    assert [s.name for s in report.spaces] == ["free", "sites", "approach"] and report.workers == 2
    dead = messages(report, "dead-rule")
    assert dead and not any("run without --quick" in m for m in dead) and not report.passed
    assert messages(report, "dead-rule", "warning") == []
    assert {m.split(" ")[0] for m in dead} == {rid for rid, n in report.rule_counts.items() if n == 0}
    assert not any("run without --quick" in m for m in messages(report, "subsumed", "warning"))


def test_a_rule_base_that_does_not_load_is_one_finding(seam: Seam, tmp_path: Path) -> None:
    report = audit(seam, tmp_path / "nowhere", quick=True)
    assert [(f.level, f.check) for f in report.findings] == [("error", "load")] and not report.passed
    assert "nowhere" in report.findings[0].message
    assert (report.ruleset, report.spaces, report.rule_counts, report.modality_counts, report.workers) == (
        {"version": "?", "digest": "?"},
        [],
        {},
        {},
        0,
    )
    assert seam.opened == [] and report.seconds >= 0


def test_an_invariant_file_that_does_not_load_is_one_finding(seam: Seam, rule_copy: Any) -> None:
    def bad_note(data: dict[str, Any]) -> None:
        data["invariants"][0]["must"]["notes"] = ["RATE-US-FIT"]

    folder = rule_copy("invariants.yaml", bad_note)
    report = audit(seam, folder, quick=True)
    [finding] = report.findings
    assert (finding.level, finding.check) == ("error", "load") and "INV-LANDMARK-JUSTIFIED" in finding.message
    kb = load(folder)
    assert (report.ruleset, report.spaces, report.rule_counts, report.modality_counts, report.workers) == (
        {"version": kb.version, "digest": kb.digest},
        [],
        {},
        {},
        0,
    )
    assert report.summary()["never_fired"] == []
    assert seam.opened == []


def test_the_whole_space_counts_each_space_apart(seam: Seam, monkeypatch: pytest.MonkeyPatch) -> None:
    """Three spaces' firings joined: each rule counted once per case that fired it, whatever space.
    (With the CPUs unknown, one worker.)"""
    seam.keep = {"site", "approach", "injectate", "region"}
    monkeypatch.setattr(os, "cpu_count", lambda: None)
    report = audit(seam)
    assert report.workers == 1 == seam.opened[0][0]
    kb = load(SHIPPED)
    rec = Recommender(kb, cache_size=0)
    want = oracle(rec, seam.spaces)
    extra = equipment_fired(rec, kb.sites) - set(want.fired)
    assert report.rule_counts == {r.id: want.fired[r.id] or int(r.id in extra) for r in kb.rules}
    assert report.modality_counts == {m.value: want.modalities[m.value] for m in MODALITIES}
    vacuous = messages(report, "invariant-vacuous", "warning")  # the whole space: an invariant covering none proves nothing
    assert vacuous and all(m.endswith("covers no case in the enumerated spaces") for m in vacuous)


def planted_worker(monkeypatch: pytest.MonkeyPatch, folder: str | Path, fault: Callable[[Any], Any]) -> None:
    """Plant `fault` in the answers of the worker side's recommender for the rule base in `folder`,
    and make its joined JSON differ from the parent's."""
    rec = worker_recommender(RuleBase(str(Path(folder).resolve()), load(folder).digest))
    original = rec.evaluate_many
    monkeypatch.setattr(rec, "evaluate_many", lambda batch: [fault(ev) for ev in original(batch)])
    monkeypatch.setattr(rec, "recommend_json", lambda case: "{}")


def landmark(ev: Any) -> Any:
    return dataclasses.replace(ev, modality=Modality.LANDMARK, values={**ev.values, "modality": "landmark"})


def test_faults_on_the_worker_side_are_the_audits_errors(seam: Seam, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every hip case answered landmark without justification, and a sampled answer that differs
    between the worker and the parent: each problem once, with its count and first case; the
    invariant with its count; the sample recomputed here differs."""
    seam.keep = {"site", "injectate", "palpable"}  # (a space holds both values of a field an escalation steps over)
    planted_worker(monkeypatch, SHIPPED, landmark)
    analyse_marks = check.analyse_marks
    clash = Finding("error", "conflict", "R-X and R-Y rate both differently on overlapping cases and neither overrides the other")
    monkeypatch.setattr(check, "analyse_marks", lambda *args: [*analyse_marks(*args), clash])
    report = audit(seam, workers=1, quick=True, sites=["hip"])
    [space] = seam.spaces
    n = report.spaces[0].valid
    assert n == space.size // 2  # a palpable hip contradicts the site
    assert not report.passed and report.modality_counts == {m.value: n if m is Modality.LANDMARK else 0 for m in MODALITIES}
    [unjustified] = [f for f in report.findings if f.check == "landmark-unjustified"]
    assert unjustified == Finding(
        "error",
        "landmark-unjustified",
        f"landmark recommended without landmark_suitable ({n} cases; the first is shown)",
        as_json_case(space.case(0)),
    )
    [joined] = [f for f in report.findings if f.check == "json-identical"]
    assert joined == Finding(
        "error", "json-identical", "joined JSON differs from model_dump_json (1 case; the first is shown)", as_json_case(space.case(0))
    )
    assert [(f.level, f.message, f.case) for f in report.findings if f.check == "determinism"] == [
        ("error", "JSON differs between processes", as_json_case(space.case(0)))
    ]
    [breach] = [f.message for f in report.findings if f.check == "invariant" and f.message.startswith("INV-LANDMARK-JUSTIFIED")]
    assert breach.startswith(f"INV-LANDMARK-JUSTIFIED fails on {n} of {n} cases it covers: ")
    assert [f for f in report.findings if f.check == "conflict"] == [clash]  # a partial run proves a conflict all the same
    grouped = [(f.check, f.message) for f in report.findings if f.message.endswith("the first is shown)")]
    assert len(grouped) == len({check for check, _ in grouped}) > 2  # one finding per distinct problem
    counts = [int(message.rsplit(" (", 1)[1].split(" ")[0]) for _, message in grouped]
    assert sorted(zip([-n for n in counts], grouped, strict=True)) == list(
        zip([-n for n in counts], grouped, strict=True)
    )  # most cases first


def monotone_count(rec: Recommender, space: Space, fields: tuple[str, ...]) -> int:
    """Landmark cases with a flag set whose neighbour without it is imaged, one per flag."""
    answered = {}
    for i in range(space.size):
        with contextlib.suppress(CaseError, EngineError):
            answered[i] = rec.evaluate(resolve(space.case(i), rec.knowledge).values).modality
    count = 0
    for i, modality in answered.items():
        case = space.case(i)
        for field in fields:
            if modality is Modality.LANDMARK and case[field]:
                below = answered.get(space.index({**case, field: False}))
                count += below is not None and below is not Modality.LANDMARK
    return count


def invert(rule_id: str, field: str) -> Callable[[dict[str, Any]], None]:
    return lambda data: find_rule(data, rule_id)["when"].update({field: False})


def test_monotone_violations_are_listed_up_to_a_cap(seam: Seam, monkeypatch: pytest.MonkeyPatch, rule_copy: Any) -> None:
    """Invert the neurovascular and the precise-plane rules at the sites where landmark is possible:
    each landmark case whose neighbour without one of the flags is imaged is a violation; past
    MAX_LISTED in a space, the rest are counted in one line. The sampled answer of each space
    differs between processes: one finding for both."""
    seam.keep = {"site", "approach", "injectate", "near_neurovascular", "precise_plane", "palpable"}
    rule_copy("landmark.yaml", invert("LU-NEUROVASCULAR", "near_neurovascular"))
    folder = rule_copy("landmark.yaml", invert("LU-PRECISE-PLANE", "precise_plane"))
    planted_worker(monkeypatch, folder, lambda ev: ev)
    report = audit(seam, folder, workers=1, quick=True, sites=["knee", "elbow", "radiocarpal"])
    rec = Recommender(load(folder), cache_size=0)
    per_space = [monotone_count(rec, space, ("near_neurovascular", "precise_plane")) for space in seam.spaces]
    assert len(per_space) == 2 and min(per_space) > MAX_LISTED
    found = messages(report, "monotone")
    listed = [m for m in found if " turns " in m]
    assert len(listed) == 2 * MAX_LISTED and len(found) == len(listed) + 2
    assert all(
        m.startswith(("INV-MONO-NEUROVASCULAR: changing near_neurovascular from False to True turns ", "INV-MONO-PLANE: ")) for m in listed
    )
    assert [m for m in found if " turns " not in m] == [f"{n - MAX_LISTED} further monotone findings not listed" for n in per_space]
    [joined] = [f for f in report.findings if f.check == "json-identical"]
    assert joined.message == "joined JSON differs from model_dump_json (2 cases; the first is shown)"
    assert joined.case in [as_json_case(s.case(0)) for s in seam.spaces]
    assert len(messages(report, "determinism")) == 2
    # the rules' own examples are run on the copy: the inverted rules no longer behave as they say
    assert any(m.startswith("LU-NEUROVASCULAR fires on its own 'silent' example") for m in messages(report, "rule-example"))
