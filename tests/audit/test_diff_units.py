"""Fast unit tests of the rule-change diff (guidance_rules.audit.diff): its records, its spaces, and
one chunk of cases compared under two rule bases, checked case by case against the public
`recommend` (issue 24: mutation testing of the audit; the diffs in test_diff.py run worker pools
over whole spaces, seconds each)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from guidance_rules.audit.diff import INVALID, NO_ANSWER, DiffReport, Group, diff_spaces, run_diff
from guidance_rules.audit.diff import diff_chunk as chunk_of
from guidance_rules.errors import CaseError, RuleFileError
from guidance_rules.recommendation.pool import RuleBase
from guidance_rules.recommendation.recommender import Recommender
from guidance_rules.rulebase.conditions import CASE_FIELDS
from guidance_rules.rulebase.load import default_knowledge, default_rules_dir, load
from guidance_rules.rulebase.space import EQUIPMENT_SETS, as_json_case
from tests.conftest import find_rule

KB = default_knowledge()
SHIPPED = str(default_rules_dir())
REC = Recommender(KB, cache_size=0)


def group() -> Group:
    g = Group("sites", "knee", "landmark", "ultrasound", 3)
    g.parts.update({"ratings": 3, "modality": 3, "questions": 1})
    g.rules_old_only.update({"LU-X": 3})
    g.rules_new_only.update({"LM-Y": 2, "LU-X": 1})
    g.example, g.first = {"site": "knee"}, 17
    return g


def test_a_group_as_json() -> None:
    assert group().as_json() == {
        "space": "sites",
        "site": "knee",
        "old": "landmark",
        "new": "ultrasound",
        "count": 3,
        "changed": {"modality": 3, "ratings": 3, "questions": 1},
        "rules": {"LM-Y": {"old_only": 0, "new_only": 2}, "LU-X": {"old_only": 3, "new_only": 1}},
        "example": {"site": "knee"},
    }
    assert list(group().as_json()["changed"]) == ["modality", "ratings", "questions"]  # in the order of PARTS
    bare = Group("free", "", "both", "both").as_json()
    assert bare["site"] is None and bare["count"] == 0 and bare["changed"] == {} and bare["rules"] == {} and bare["example"] is None


def report(groups: list[Group], added: list[str] | None = None, removed: list[str] | None = None) -> DiffReport:
    cells: dict[str, Counter[tuple[str, ...]]] = {}
    return DiffReport({"version": "1"}, {"version": "2"}, {"sites": {"enumerated": 9}}, groups, added or [], removed or [], cells, 2.345, 4)


def test_a_report_changed_by_groups_or_sites() -> None:
    assert not report([]).changed
    assert report([group()]).changed and report([], ["new"]).changed and report([], None, ["old"]).changed


def test_the_summary() -> None:
    other = Group("free", "", "both", "fluoroscopy", 5)
    assert report([group(), other], ["a"], ["b"]).summary() == {
        "changed": True,
        "old": {"version": "1"},
        "new": {"version": "2"},
        "cases": {"sites": {"enumerated": 9}},
        "changed_cases": 8,
        "sites_added": ["a"],
        "sites_removed": ["b"],
        "groups": [group().as_json(), other.as_json()],
        "seconds": 2.35,
        "workers": 4,
    }
    assert report([]).summary()["changed"] is False and report([]).summary()["changed_cases"] == 0


# ---- spaces --------------------------------------------------------------------------------


def test_spaces_cover_the_sites_both_bases_know_and_equipment() -> None:
    import dataclasses

    fewer = dataclasses.replace(KB, sites={k: v for k, v in KB.sites.items() if k != "hip"})
    spaces = diff_spaces(KB, fewer, ("hip", "knee", "elbow"))
    assert [s.name for s in spaces] == ["sites", "approach", "equipment"]
    assert spaces[0].choices[0] == ("knee", "elbow")  # the new base's order, hip left out: only one base knows it
    assert spaces[1].choices[0] == ("knee",)
    assert spaces[-1].fields == ("site", "injectate", "available_modalities")
    assert spaces[-1].choices == (("knee", "elbow"), CASE_FIELDS["injectate"].values, EQUIPMENT_SETS)
    assert [s.name for s in diff_spaces(KB, KB, ("nowhere",))] == []  # every space empty: none
    assert diff_spaces(KB, KB)[0].name == "free"


# ---- one chunk -----------------------------------------------------------------------------


def diff_chunk(
    old_dir: Path | str, new_dir: Path | str, space: int, start: int, stop: int, only: tuple[str, ...] | None = None
) -> dict[str, Any]:
    """One worker's chunk of space number `space` of the diff of two rule folders, as a mapping."""
    old, new = load(old_dir), load(new_dir)
    old_base, new_base = (RuleBase(str(Path(d).resolve()), kb.digest) for d, kb in ((old_dir, old), (new_dir, new)))
    out = chunk_of(old_base, new_base, diff_spaces(old, new, only)[space], start, stop)
    return {"space": out.space, "size": out.stop - out.start, "groups": out.groups, "valid": out.valid, "cells": out.cells}


def answer(rec: Recommender, case: dict[str, Any]) -> tuple[str, Any] | None:
    try:
        data = rec.recommend(case).model_dump(mode="json")
    except ValidationError:
        return None
    return data["modality"], {p: data[p] for p in ("ratings", "documentation", "cautions", "questions")}


def test_a_chunk_under_the_same_rules_changes_nothing() -> None:
    only = ("epidural_interlaminar",)
    space = diff_spaces(KB, KB, only)[0]
    out = diff_chunk(SHIPPED, SHIPPED, 0, 100, 400, only)
    assert out["space"] == "sites" and out["size"] == 300 and out["groups"] == []
    cases = [as_json_case(space.case(i)) for i in range(100, 400)]
    valid = sum(answer(REC, c) is not None for c in cases)
    assert 0 < valid < 300  # the range holds contradictions (an effusion at the epidural space)
    assert out["valid"] == Counter({"old": valid, "new": valid})
    expected = Counter((c["site"], c["injectate"], "valid") for c in cases if answer(REC, c) is not None)
    assert out["cells"] == expected


def test_free_and_approach_cells() -> None:
    out = diff_chunk(SHIPPED, SHIPPED, 0, 0, 40)
    assert out["space"] == "free"
    keys = {k[:-1] for k in out["cells"]}
    assert keys and all(len(k) == 3 and k[0] in CASE_FIELDS["injectate"].values and k[2] in CASE_FIELDS["tissue"].values for k in keys)
    assert {k[1] for k in keys} <= {f"{r} {d}" for r in CASE_FIELDS["region"].values for d in CASE_FIELDS["depth"].values}
    out = diff_chunk(SHIPPED, SHIPPED, 1, 0, 20, ("knee",))
    assert out["space"] == "approach"
    assert {k[0] for k in out["cells"]} <= {f"knee {a}" for a in CASE_FIELDS["approach"].values} and out["cells"]


def _brute(old: Recommender, new: Recommender, cases: list[dict[str, Any]]) -> Counter[tuple[str, str, str]]:
    found: Counter[tuple[str, str, str]] = Counter()
    for case in cases:
        before, after = answer(old, case), answer(new, case)
        if before != after:
            found[(case["site"], before[0] if before else INVALID, after[0] if after else INVALID)] += 1
    return found


def test_a_retired_rule_gives_the_groups_recommend_gives(rule_copy: Callable[..., Path]) -> None:
    def retire(data: dict[str, Any]) -> None:
        find_rule(data, "LU-EFFUSION")["status"] = "retired"

    new_dir = rule_copy("landmark.yaml", retire)
    only = ("knee",)
    space = diff_spaces(KB, KB, only)[0]
    start, stop = 64 * 4, 64 * 5  # the first injectate, variance set 4 (effusion alone), every flag
    out = diff_chunk(SHIPPED, str(new_dir), 0, start, stop, only)
    cases = [as_json_case(space.case(i)) for i in range(start, stop)]
    new = Recommender(load(new_dir), cache_size=0)
    expected = _brute(REC, new, cases)
    assert expected and Counter({(g.site, g.old, g.new): g.count for g in out["groups"]}) == expected
    changed = Counter((c["site"], c["injectate"]) for c in cases if answer(REC, c) != answer(new, c))
    assert Counter({k[:2]: n for k, n in out["cells"].items() if k[2] == "changed"}) == changed
    old_only: Counter[str] = Counter()
    new_only: Counter[str] = Counter()
    for c in cases:
        if answer(REC, c) != answer(new, c):
            before, after = set(REC.evaluate(REC.resolve(c).values).fired), set(new.evaluate(new.resolve(c).values).fired)
            old_only.update(before - after)
            new_only.update(after - before)
    assert sum((g.rules_old_only for g in out["groups"]), Counter()) == old_only
    assert sum((g.rules_new_only for g in out["groups"]), Counter()) == new_only
    for g in out["groups"]:
        assert g.space == "sites" and g.rules_old_only["LU-EFFUSION"] == g.count and "LU-EFFUSION" not in g.rules_new_only
        first = next(i for i in range(start, stop) if _key(REC, new, as_json_case(space.case(i))) == (g.site, g.old, g.new))
        assert (g.first, g.example) == (first, as_json_case(space.case(first)))
        assert "effusion" in g.example["anatomy_variance"] and isinstance(g.example["anatomy_variance"], list)
        assert g.parts["modality"] == (g.count if g.old != g.new else 0) and "validity" not in g.parts
        assert sum(g.parts.values()) >= g.count


def _key(old: Recommender, new: Recommender, case: dict[str, Any]) -> tuple[str, str, str] | None:
    before, after = answer(old, case), answer(new, case)
    if before == after:
        return None
    return (case["site"], before[0] if before else INVALID, after[0] if after else INVALID)


def test_a_dropped_constraint_changes_validity(rule_copy: Callable[..., Path]) -> None:
    def drop(data: dict[str, Any]) -> None:
        data["constraints"] = [c for c in data["constraints"] if c["id"] != "C-EFFUSION-TISSUE"]

    new_dir = rule_copy("constraints.yaml", drop)
    only = ("epidural_interlaminar",)
    out = diff_chunk(SHIPPED, str(new_dir), 0, 64 * 3, 64 * 5, only)  # variance sets 3 and 4 (effusion alone)
    invalid_before = [g for g in out["groups"] if g.old == INVALID]
    assert invalid_before and all(g.new not in (INVALID, NO_ANSWER) for g in invalid_before)
    assert all(g.parts["validity"] == g.parts["modality"] == g.count and set(g.parts) == {"validity", "modality"} for g in invalid_before)
    space = diff_spaces(KB, KB, only)[0]
    new = Recommender(load(new_dir), cache_size=0)
    newly = sum(answer(REC, c) is None and answer(new, c) is not None for c in (as_json_case(space.case(i)) for i in range(64 * 3, 64 * 5)))
    assert out["valid"]["new"] - out["valid"]["old"] == sum(g.count for g in invalid_before) == newly > 0
    assert sum(n for k, n in out["cells"].items() if k[-1] == "valid") == out["valid"]["new"]


def test_a_gap_in_the_new_rules_is_no_answer(rule_copy: Callable[..., Path]) -> None:
    new_dir = rule_copy("landmark.yaml", lambda d: find_rule(d, "LM-FAVOURABLE")["when"].update(target_size="small"))
    out = diff_chunk(SHIPPED, str(new_dir), 0, 0, 64 * 2, ("knee",))
    gaps = [g for g in out["groups"] if g.new == NO_ANSWER]
    assert gaps and all(g.old not in (INVALID, NO_ANSWER) and set(g.parts) == {"modality"} for g in gaps)
    assert all(not g.rules_new_only for g in gaps)
    assert out["valid"]["old"] == out["valid"]["new"]


def test_a_reworded_caution_changes_only_the_cautions(rule_copy: Callable[..., Path]) -> None:
    def reword(data: dict[str, Any]) -> None:
        for rule in data["rules"]:
            if "caution" in rule["then"]:
                rule["then"]["caution"] += " (reworded)"

    new_dir = rule_copy("cautions.yaml", reword)
    out = diff_chunk(SHIPPED, str(new_dir), 0, 0, 64, ("knee",))
    assert out["groups"]
    for g in out["groups"]:
        assert g.old == g.new and set(g.parts) == {"cautions"} and not g.rules_old_only and not g.rules_new_only


def test_run_diff_refuses_what_it_cannot_compare(tmp_path: Path) -> None:
    with pytest.raises(RuleFileError, match="rule directory not found"):
        run_diff(SHIPPED, tmp_path / "missing")
    with pytest.raises(CaseError, match=r"^site 'kne' is in neither rule base; sites: knee, ") as caught:
        run_diff(SHIPPED, SHIPPED, sites=["knee", "kne", "zzz"])
    assert caught.value.fields == ("site",) and caught.value.kind == "unknown_site"


def test_a_block_with_no_valid_case() -> None:
    out = diff_chunk(SHIPPED, SHIPPED, 0, 64 * 4, 64 * 5, ("epidural_interlaminar",))  # effusion at the epidural space: no case
    assert out["valid"] == Counter({"old": 0, "new": 0}) and out["groups"] == [] and out["cells"] == Counter()


def test_a_rule_added_is_found_though_every_rule_the_old_base_fired_is_unchanged(rule_copy: Callable[..., Path]) -> None:
    """The other way round: the old base lacks LU-EFFUSION, so each of its firing rules is the same in the new."""

    def retire(data: dict[str, Any]) -> None:
        find_rule(data, "LU-EFFUSION")["status"] = "retired"

    old_dir = str(rule_copy("landmark.yaml", retire))
    out = diff_chunk(old_dir, SHIPPED, 0, 64 * 3, 64 * 5, ("knee",))
    assert out["groups"] and all(g.rules_new_only["LU-EFFUSION"] == g.count and not g.rules_old_only["LU-EFFUSION"] for g in out["groups"])


def test_a_constraint_added_makes_cases_invalid(rule_copy: Callable[..., Path]) -> None:
    def drop(data: dict[str, Any]) -> None:
        data["constraints"] = [c for c in data["constraints"] if c["id"] != "C-EFFUSION-TISSUE"]

    old_dir = str(rule_copy("constraints.yaml", drop))
    out = diff_chunk(old_dir, SHIPPED, 0, 64 * 3, 64 * 5, ("epidural_interlaminar",))
    invalid_after = [g for g in out["groups"] if g.new == INVALID]
    assert invalid_after and all(set(g.parts) == {"validity", "modality"} and g.parts["validity"] == g.count for g in invalid_after)


def test_a_changed_site_default_is_compared_by_resolving_under_each_base(rule_copy: Callable[..., Path]) -> None:
    """Only resolution differs (the knee's target size): the cases must be resolved under each base."""

    def smaller(data: dict[str, Any]) -> None:
        data["sites"]["knee"]["defaults"]["target_size"] = "small"

    new_dir = str(rule_copy("sites.yaml", smaller))
    space = diff_spaces(KB, KB, ("knee",))[0]
    out = diff_chunk(SHIPPED, new_dir, 0, 0, 64, ("knee",))
    new = Recommender(load(new_dir), cache_size=0)
    expected = _brute(REC, new, [as_json_case(space.case(i)) for i in range(64)])
    assert expected and Counter({(g.site, g.old, g.new): g.count for g in out["groups"]}) == expected
