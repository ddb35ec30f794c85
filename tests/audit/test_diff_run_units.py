"""Fast unit tests of the whole rule-change diff (guidance_rules.audit.diff.run_diff) run in this
process: the worker pool is replaced by a stand-in that maps the jobs here, in an order other
than the planned one, so every line of the diff (chunks, merge, completeness proof, report) is
exercised without spawning workers (issue 24: mutation testing of the audit; the pooled diffs
in test_diff.py take seconds each). Expected answers come from the public `recommend`."""

from __future__ import annotations

import itertools
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from guidance_rules.audit import diff
from guidance_rules.audit.diff import INVALID, DiffChunk, DiffReport, Group, run_diff
from guidance_rules.errors import AuditError, CaseError, EngineError, RuleFileError
from guidance_rules.recommendation.pool import RuleBase
from guidance_rules.recommendation.recommender import Recommender
from guidance_rules.rulebase.domain import KnowledgeBase
from guidance_rules.rulebase.load import default_knowledge, default_rules_dir, load
from guidance_rules.rulebase.space import Space, as_json_case
from tests.conftest import find_rule

KB = default_knowledge()
SHIPPED = str(default_rules_dir())
REC = Recommender(KB, cache_size=0)


@dataclass
class Inline:
    """A stand-in for the worker pool: runs each job here, in the order `order` gives."""

    order: Callable[[list[Any]], list[Any]] = lambda jobs: jobs[::-1]
    jobs: list[Any] = field(default_factory=list)
    opened: list[tuple[int, tuple[RuleBase, ...]]] = field(default_factory=list)
    after: Callable[[list[DiffChunk]], list[DiffChunk]] = lambda chunks: chunks

    def imap_unordered(self, f: Callable[[Any], DiffChunk], jobs: Iterable[Any]) -> Iterator[DiffChunk]:
        self.jobs = list(jobs)
        return iter(self.after([f(job) for job in self.order(self.jobs)]))

    @contextmanager
    def __call__(self, workers: int, bases: Sequence[RuleBase]) -> Iterator[Inline]:
        self.opened.append((workers, tuple(bases)))
        yield self


KEEP = {"injectate": 2, "approach": 3}  # the first values of these fields; every value of the others


def narrow(space: Space) -> Space:
    """The space with fewer values (no variance but none or an effusion alone): seconds, not minutes."""
    choices = [
        values[: KEEP[f]] if f in KEEP else tuple(v for v in values if v in ((), ("effusion",))) if f == "anatomy_variance" else values
        for f, values in zip(space.fields, space.choices, strict=True)
    ]
    return Space(space.name, space.fields, tuple(choices))


REAL_SPACES = diff.diff_spaces


def spaces(old: KnowledgeBase, new: KnowledgeBase, only: tuple[str, ...] | None = None) -> list[Space]:
    return [narrow(s) for s in REAL_SPACES(old, new, only)]


@pytest.fixture
def pool(monkeypatch: pytest.MonkeyPatch) -> Inline:
    """The diff's worker pool replaced by an in-process stand-in, over narrowed spaces."""
    inline = Inline()
    monkeypatch.setattr(diff, "worker_pool", inline)
    monkeypatch.setattr(diff, "diff_spaces", spaces)
    return inline


def answer(rec: Recommender, case: dict[str, Any]) -> tuple[str, Any] | None:
    try:
        data = rec.recommend(case).model_dump(mode="json")
    except ValidationError:
        return None
    return data["modality"], {p: data[p] for p in ("ratings", "documentation", "cautions", "questions")}


def fired(rec: Recommender, case: dict[str, Any]) -> set[str]:
    try:
        return set(rec.evaluate(rec.resolve(case).values).fired)
    except (ValidationError, CaseError):
        return set()


def brute(old_dir: str, new_dir: str, sites: tuple[str, ...]) -> dict[str, Any]:
    """Per space, through the public `recommend`: its size, the valid cases under each base, and
    each changed (site, old, new) as a group's JSON with its first index."""
    old, new = load(old_dir), load(new_dir)
    rec_old, rec_new = Recommender(old, cache_size=0), Recommender(new, cache_size=0)
    out: dict[str, Any] = {}
    for space in spaces(old, new, sites):
        valid: Counter[str] = Counter()
        groups: dict[tuple[str, str, str], Group] = {}
        for i in range(space.size):
            case = as_json_case(space.case(i))
            before, after = answer(rec_old, case), answer(rec_new, case)
            valid["old"] += before is not None
            valid["new"] += after is not None
            if before == after:
                continue
            key = (case["site"], before[0] if before else INVALID, after[0] if after else INVALID)
            if key not in groups:
                groups[key] = Group(space.name, *key)
                groups[key].example, groups[key].first = case, i
            g = groups[key]
            g.count += 1
            g.parts.update(["validity"] if (before is None) != (after is None) else [])
            g.parts.update(["modality"] if key[1] != key[2] else [])
            if before and after:
                g.parts.update(p for p in before[1] if before[1][p] != after[1][p])
            was, now = fired(rec_old, case), fired(rec_new, case)
            g.rules_old_only.update(was - now)
            g.rules_new_only.update(now - was)
        out[space.name] = {"size": space.size, "valid": valid, "groups": groups}
    return out


def _retire(rule_id: str) -> Callable[[dict[str, Any]], None]:
    def edit(data: dict[str, Any]) -> None:
        find_rule(data, rule_id)["status"] = "retired"

    return edit


@pytest.fixture
def retired(rule_copy: Callable[..., Path]) -> str:
    """The shipped rules with LU-EFFUSION retired: answers at the elbow change when it has an effusion."""
    return str(rule_copy("landmark.yaml", _retire("LU-EFFUSION")))


def expect(report: DiffReport, old_dir: str, new_dir: str, sites: tuple[str, ...]) -> None:
    """The report holds exactly the counts and groups a brute force through `recommend` finds."""
    expected = brute(old_dir, new_dir, sites)
    assert set(report.cases) == set(expected)
    for name, want in expected.items():
        assert report.cases[name] == {
            "enumerated": want["size"],
            "valid_old": want["valid"]["old"],
            "valid_new": want["valid"]["new"],
            "changed": sum(g.count for g in want["groups"].values()),
        }
    groups = {(g.space, g.site, g.old, g.new): g for g in report.groups}
    want_groups = {(name, *k): g for name, want in expected.items() for k, g in want["groups"].items()}
    assert groups.keys() == want_groups.keys()
    for key, g in groups.items():  # the example is the case of lowest index, whatever order the chunks came in
        assert (g.as_json(), g.first) == (want_groups[key].as_json(), want_groups[key].first), key


def test_a_planted_change_gives_the_cases_recommend_gives(pool: Inline, retired: str) -> None:
    report = run_diff(SHIPPED, retired, workers=2, sites=["elbow"])
    expect(report, SHIPPED, retired, ("elbow",))
    assert set(report.cases) == {"sites", "equipment"} and report.changed and len(pool.jobs) > 2
    assert all(g.rules_old_only["LU-EFFUSION"] == g.count for g in report.groups) and report.groups
    summary = report.summary()
    assert summary["changed"] is True and summary["changed_cases"] == sum(g.count for g in report.groups) > 0
    assert summary["groups"] == [g.as_json() for g in report.groups]


def test_groups_come_largest_first_then_by_space_site_and_modalities(pool: Inline, retired: str, rule_copy: Callable[..., Path]) -> None:
    def drop(data: dict[str, Any]) -> None:
        data["constraints"] = [c for c in data["constraints"] if c["id"] != "C-EFFUSION-TISSUE"]

    rule_copy("constraints.yaml", drop)  # the same copy: also cases newly valid
    report = run_diff(SHIPPED, retired, workers=1, sites=["elbow", "radiocarpal", "epidural_interlaminar", "epidural_transforaminal"])
    keys = [(-g.count, g.space, g.site, g.old, g.new) for g in report.groups]
    assert len(keys) >= 3 and keys == sorted(keys)
    assert len({k[0] for k in keys}) < len(keys)  # ties in count exist, so the secondary order is exercised
    assert len({(g.space, g.site, g.old, g.new) for g in report.groups}) == len(keys)  # one group per key after the merge


def test_the_report_names_both_bases_and_its_workers(pool: Inline, retired: str) -> None:
    report = run_diff(SHIPPED, retired, workers=3, sites=["elbow"])
    new = load(retired)
    assert report.old == {"version": KB.version, "digest": KB.digest}
    assert report.new == {"version": new.version, "digest": new.digest} and new.digest != KB.digest
    assert report.workers == 3 and 0 <= report.seconds < 600
    assert (report.sites_added, report.sites_removed) == ([], [])
    assert pool.opened == [(3, (RuleBase(SHIPPED, KB.digest), RuleBase(str(Path(retired).resolve()), new.digest)))]


def test_relative_folders_reach_the_workers_resolved(pool: Inline, retired: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers may not share the parent's working directory: they get absolute folders."""
    monkeypatch.chdir(Path(retired).parent)
    run_diff(SHIPPED, "rules", workers=1, sites=["elbow"])
    ((_, bases),) = pool.opened
    assert bases[1].directory == str(Path(retired).resolve()) and Path(bases[1].directory).is_absolute()
    assert {job[1] for job in pool.jobs} == {bases[1]} and {job[0] for job in pool.jobs} == {bases[0]}


def test_workers_default_to_the_cores(pool: Inline, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 3)
    assert run_diff(SHIPPED, SHIPPED, sites=["elbow"]).workers == 3
    assert pool.opened[-1][0] == 3
    monkeypatch.setattr(os, "cpu_count", lambda: None)  # unknown: one worker
    assert run_diff(SHIPPED, SHIPPED, workers=0, sites=["elbow"]).workers == 1
    assert pool.opened[-1][0] == 1


def test_an_unchanged_copy(pool: Inline, rule_copy: Callable[..., Path]) -> None:
    copy = str(rule_copy("landmark.yaml", lambda data: None))
    report = run_diff(SHIPPED, copy, workers=2, sites=["knee"])
    assert not report.changed and report.groups == [] and report.summary()["changed_cases"] == 0
    assert all(c["changed"] == 0 and c["valid_old"] == c["valid_new"] > 0 for c in report.cases.values())
    assert set(report.cells) == set(report.cases) == {"sites", "approach", "equipment"}
    for name, cells in report.cells.items():
        assert sum(n for k, n in cells.items() if k[-1] == "valid") == report.cases[name]["valid_old"]
        assert not any(k[-1] == "changed" for k in cells)


def test_jobs_tile_each_space_in_chunks_that_keep_every_worker_busy(pool: Inline) -> None:
    run_diff(SHIPPED, SHIPPED, workers=2, sites=["knee"])
    sizes = {s.name: s.size for s in spaces(KB, KB, ("knee",))}
    for name, size in sizes.items():
        spans = sorted((job[3], job[4]) for job in pool.jobs if job[2].name == name)
        assert spans[0][0] == 0 and spans[-1][1] == size and all(a[1] == b[0] for a, b in itertools.pairwise(spans))
        assert len(spans) >= min(8, size)  # at least four jobs per worker


def _empty(pool: Inline) -> None:
    """The stand-in returns each job's chunk without evaluating it (an unchanged diff, planned in full)."""

    def planned(f: Callable[[Any], DiffChunk], jobs: Iterable[Any]) -> Iterator[DiffChunk]:
        pool.jobs = list(jobs)
        return iter([DiffChunk(j[2].name, j[3], j[4]) for j in pool.jobs])

    pool.imap_unordered = planned  # type: ignore[method-assign]


def test_without_sites_every_space_is_compared_whole(pool: Inline, monkeypatch: pytest.MonkeyPatch) -> None:
    """Planned in full (the real spaces, not narrowed; the chunks are not evaluated): every space of
    the audit, each tiled by jobs of a few thousand cases."""
    _empty(pool)
    monkeypatch.setattr(diff, "diff_spaces", REAL_SPACES)
    report = run_diff(SHIPPED, SHIPPED, workers=1)
    want = {s.name: s.size for s in REAL_SPACES(KB, KB)}
    assert list(want) == ["free", "sites", "approach", "equipment"] and want["free"] > 100_000
    assert max(job[4] - job[3] for job in pool.jobs) < 10_000
    assert {name: c["enumerated"] for name, c in report.cases.items()} == want
    assert all(c == {"enumerated": want[n], "valid_old": 0, "valid_new": 0, "changed": 0} for n, c in report.cases.items())


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (lambda chunks: chunks[1:], r"space (sites|equipment): cases 0\.\.\d+ were never evaluated"),
        (lambda chunks: [*chunks, chunks[0]], r"were evaluated twice"),
    ],
)
def test_a_chunk_lost_or_repeated_stops_the_diff(pool: Inline, tamper: Callable[[list[DiffChunk]], list[DiffChunk]], message: str) -> None:
    """The diff proves every index was compared exactly once; a pool that loses or repeats a chunk
    must not yield a report that reads as complete."""
    pool.order = lambda jobs: sorted(jobs, key=lambda j: (j[2].name, j[3]))
    pool.after = tamper
    with pytest.raises(AuditError, match=message):
        run_diff(SHIPPED, SHIPPED, workers=1, sites=["elbow"])


def _add_site(data: dict[str, Any]) -> None:
    data["sites"]["zz_knee_copy"] = data["sites"]["knee"]


def test_sites_added_and_removed(pool: Inline, rule_copy: Callable[..., Path]) -> None:
    more = str(rule_copy("sites.yaml", _add_site))
    report = run_diff(SHIPPED, more, workers=1, sites=["elbow"])
    assert (report.sites_added, report.sites_removed, report.changed) == (["zz_knee_copy"], [], True)
    assert report.groups == [] and report.summary()["sites_added"] == ["zz_knee_copy"]
    back = run_diff(more, SHIPPED, workers=1, sites=["zz_knee_copy"])  # a site the old base alone knows may be named
    assert (back.sites_added, back.sites_removed) == ([], ["zz_knee_copy"]) and back.cases == {}


def test_a_site_only_the_new_base_knows_may_be_named(pool: Inline, rule_copy: Callable[..., Path]) -> None:
    more = str(rule_copy("sites.yaml", _add_site))
    report = run_diff(SHIPPED, more, workers=1, sites=["zz_knee_copy", "elbow"])
    assert set(report.cases) == {"sites", "equipment"} and report.cases["sites"]["enumerated"] == spaces(KB, KB, ("elbow",))[0].size


def test_a_rule_base_that_cannot_load_is_named(pool: Inline, rule_copy: Callable[..., Path], tmp_path: Path) -> None:
    broken = rule_copy("landmark.yaml", lambda data: find_rule(data, "LU-EFFUSION").update(rate="often"))
    for old, new in ((SHIPPED, broken), (broken, SHIPPED)):
        with pytest.raises(RuleFileError, match=r"^landmark\.yaml, rule LU-EFFUSION, key 'rate': ") as caught:
            run_diff(old, new, workers=1, sites=["elbow"])
        assert (caught.value.file, caught.value.rule) == ("landmark.yaml", "LU-EFFUSION") and pool.opened == []
    with pytest.raises(RuleFileError, match="rule directory not found"):
        run_diff(tmp_path / "missing", SHIPPED, workers=1)


def test_the_example_stays_the_first_case_when_its_chunk_comes_first(pool: Inline, rule_copy: Callable[..., Path]) -> None:
    """Chunks in planned order, the first case of a space (index 0) changed: later chunks of the
    same group must not replace its example."""

    def lower(data: dict[str, Any]) -> None:
        find_rule(data, "RATE-LANDMARK-SUITABLE")["then"]["rate"]["ultrasound"] = "usually_not_appropriate"

    new_dir = str(rule_copy("landmark.yaml", lower))
    pool.order = lambda jobs: jobs
    report = run_diff(SHIPPED, new_dir, workers=1, sites=["radiocarpal"])
    [equipment] = [s for s in spaces(KB, load(new_dir), ("radiocarpal",)) if s.name == "equipment"]
    [group] = [g for g in report.groups if g.space == "equipment" and g.first == 0]
    chunks = [job for job in pool.jobs if job[2].name == "equipment"]
    assert group.count > 1 and len(chunks) > 1 and group.example == as_json_case(equipment.case(0))
    changed = Counter({k: n for k, n in report.cells["equipment"].items() if k[-1] == "changed"})
    assert sum(changed.values()) == group.count and max(changed.values()) > 1  # each changed case counted in its cell


class CompileSpy:
    """Stands in for Recommender in run_diff: records the rule bases it is built for and refuses one."""

    def __init__(self, refuse: str) -> None:
        self.refuse = refuse
        self.built: list[KnowledgeBase | None] = []

    def __call__(self, knowledge: KnowledgeBase | None = None, **options: Any) -> Recommender:
        self.built.append(knowledge)
        if knowledge is not None and knowledge.digest == self.refuse:
            raise EngineError("cannot compile")
        return Recommender(knowledge, **options)


def test_a_rule_base_that_cannot_compile_stops_the_diff_before_any_worker(
    pool: Inline, retired: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    digest = load(retired).digest
    for old, new in ((SHIPPED, retired), (retired, SHIPPED)):
        spy = CompileSpy(digest)
        monkeypatch.setattr(diff, "Recommender", spy)
        with pytest.raises(EngineError, match="cannot compile"):
            run_diff(old, new, workers=1, sites=["elbow"])
        assert pool.opened == [] and digest in {k.digest for k in spy.built if k is not None}
