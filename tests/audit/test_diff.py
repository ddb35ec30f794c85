"""Rule-change impact: a planted one-rule change gives exactly the diff a brute force through
the public `recommend` finds; an unchanged copy gives exit 0; bad input gives exit 2."""

from __future__ import annotations

import itertools
import json
import re
import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from guidance_rules import Recommender
from guidance_rules.audit.diff import diff_spaces, run_diff
from guidance_rules.audit.diff_report import render
from guidance_rules.cli import main
from guidance_rules.rulebase.conditions import BOOL_FIELDS as FLAGS
from guidance_rules.rulebase.conditions import CASE_FIELDS
from guidance_rules.rulebase.load import default_rules_dir, load
from guidance_rules.rulebase.space import BUILDERS, VARIANCE_SETS, audit_spaces
from tests.conftest import find_rule

SITES = ("knee", "elbow", "lumbar_facet")  # two where effusion matters, one where it cannot
PARTS = ("modality", "ratings", "documentation", "cautions", "questions")


def _site_cases(sites: tuple[str, ...]) -> list[dict[str, Any]]:
    cases = []
    for site, injectate, variances, *flags in itertools.product(
        sites, CASE_FIELDS["injectate"].values, VARIANCE_SETS, *(CASE_FIELDS[f].values for f in FLAGS)
    ):
        case = {"site": site, "injectate": injectate, "anatomy_variance": list(variances), **dict(zip(FLAGS, flags, strict=True))}
        cases.append(case)
    return cases


def _answer(rec: Recommender, case: dict[str, Any]) -> dict[str, Any] | None:
    try:
        data = rec.recommend(case).model_dump(mode="json")
    except ValueError:
        return None
    return {part: data[part] for part in PARTS}


def _retire(rule_id: str) -> Callable[[dict[str, Any]], None]:
    def edit(data: dict[str, Any]) -> None:
        find_rule(data, rule_id)["status"] = "retired"

    return edit


def test_planted_change_gives_exactly_the_expected_diff(rule_copy: Callable[..., Path]) -> None:
    new_dir = rule_copy("landmark.yaml", _retire("LU-EFFUSION"))
    report = run_diff(default_rules_dir(), new_dir, workers=1, sites=SITES)
    old, new = Recommender(load(default_rules_dir())), Recommender(load(new_dir))
    expected: Counter[tuple[str, str, str]] = Counter()
    for case in _site_cases(SITES):
        before, after = _answer(old, case), _answer(new, case)
        assert (before is None) == (after is None)  # the edit touches no constraint
        if before != after:
            assert before is not None and after is not None
            expected[(case["site"], before["modality"], after["modality"])] += 1
    got = Counter({(g.site, g.old, g.new): g.count for g in report.groups if g.space == "sites"})
    assert got == expected and expected  # the planted change does change something
    assert {g.site for g in report.groups if g.space != "sites"} == {"knee"}  # the knee's approach cases change too
    assert all(site != "lumbar_facet" for site, _, _ in expected)
    for group in report.groups:
        assert group.rules_old_only["LU-EFFUSION"] == group.count  # the retired rule fired on each
        assert group.example is not None and "effusion" in group.example["anatomy_variance"]
        assert _answer(old, group.example)["modality"] == group.old  # type: ignore[index]
        assert _answer(new, group.example)["modality"] == group.new  # type: ignore[index]
    page = render(report)
    assert page.count('data-changed="') >= len(SITES) and "LU-EFFUSION" in page


def test_text_only_change_is_reported_as_such(rule_copy: Callable[..., Path]) -> None:
    """A caution's wording changed: the same rules fire, only the cautions differ."""

    def edit(data: dict[str, Any]) -> None:
        data["rules"][0]["then"] = {"caution": data["rules"][0]["then"]["caution"] + " (reworded)"}

    new_dir = rule_copy("cautions.yaml", edit)
    report = run_diff(default_rules_dir(), new_dir, workers=1, sites=("elbow",))  # no approach space: quicker
    assert report.groups
    for group in report.groups:
        assert group.old == group.new and set(group.parts) == {"cautions"}
        assert not group.rules_old_only and not group.rules_new_only


def test_unchanged_copy_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    copy = tmp_path / "rules"
    shutil.copytree(default_rules_dir(), copy)
    html = tmp_path / "diff.html"
    assert main(["diff", str(default_rules_dir()), str(copy), "--site", "knee", "--site", "hip", "--json", "--html", str(html)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["changed"] is False and data["groups"] == [] and data["changed_cases"] == 0
    assert data["cases"]["sites"]["valid_old"] == data["cases"]["sites"]["valid_new"] > 0
    assert "UNCHANGED" in html.read_text()


def test_changed_exits_1(rule_copy: Callable[..., Path], capsys: pytest.CaptureFixture[str]) -> None:
    new_dir = rule_copy("landmark.yaml", _retire("LU-EFFUSION"))
    assert main(["diff", str(default_rules_dir()), str(new_dir), "--site", "elbow"]) == 1  # no approach space: quicker
    out = capsys.readouterr().out
    assert "CHANGED:" in out and "LU-EFFUSION (old only" in out


def test_bad_input_exits_2(tmp_path: Path, rule_copy: Callable[..., Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diff", str(default_rules_dir()), str(tmp_path / "missing")]) == 2
    assert "NEW_RULES" in capsys.readouterr().err
    assert main(["diff", str(default_rules_dir()), str(default_rules_dir()), "--site", "kne"]) == 2
    assert "kne" in capsys.readouterr().err

    def broken(data: dict[str, Any]) -> None:
        data["rules"][0]["when"] = {"depth": "shallow"}

    assert main(["diff", str(default_rules_dir()), str(rule_copy("landmark.yaml", broken))]) == 2
    assert "shallow" in capsys.readouterr().err


def _drop_approach(approach: str) -> Callable[[dict[str, Any]], None]:
    """LU-APPROACH no longer counts `approach` as a poor path: only cases naming it can change."""

    def edit(data: dict[str, Any]) -> None:
        when = find_rule(data, "LU-APPROACH")["when"]
        assert approach in when["approach"]
        when["approach"] = [a for a in when["approach"] if a != approach]

    return edit


def test_approach_only_change_is_reported(
    rule_copy: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A change only knee cases with a named approach can see is found in the approach space,
    exactly as a brute force through the public `recommend` finds it, in text, JSON and HTML."""
    new_dir = rule_copy("landmark.yaml", _drop_approach("medial_midpatellar"))
    old, new = Recommender(load(default_rules_dir())), Recommender(load(new_dir))
    expected: Counter[tuple[str, str, str]] = Counter()
    for case in _site_cases(("knee",)):
        case = {**case, "approach": "medial_midpatellar"}  # the edited test reads nothing else
        before, after = _answer(old, case), _answer(new, case)
        assert before is not None and after is not None
        if before != after:
            expected[(case["site"], before["modality"], after["modality"])] += 1
    assert expected  # the planted change does change something

    report = run_diff(default_rules_dir(), new_dir, workers=1, sites=("knee",))
    monkeypatch.setattr("guidance_rules.cli.diff.run_diff", lambda *_: report)  # the command prints this report, computed once
    html = tmp_path / "diff.html"
    assert main(["diff", str(default_rules_dir()), str(new_dir), "--site", "knee", "--json", "--html", str(html)]) == 1
    data = json.loads(capsys.readouterr().out)
    assert main(["diff", str(default_rules_dir()), str(new_dir), "--site", "knee"]) == 1
    text = capsys.readouterr().out
    assert data["cases"]["approach"]["enumerated"] == data["cases"]["approach"]["valid_new"] > 0
    assert {g["space"] for g in data["groups"]} == {"approach"}
    assert Counter({(g["site"], g["old"], g["new"]): g["count"] for g in data["groups"]}) == expected
    for group in data["groups"]:
        assert group["rules"]["LU-APPROACH"] == {"old_only": group["count"], "new_only": 0}
        example = group["example"]
        assert example["approach"] == "medial_midpatellar"
        assert _answer(old, example)["modality"] == group["old"]  # type: ignore[index]
        assert _answer(new, example)["modality"] == group["new"]  # type: ignore[index]
        assert f"approach  site knee                      {group['old']} → {group['new']}: {group['count']:,} case" in text
        assert json.dumps(example) in text
    changed_rows: Counter[tuple[str, str]] = Counter()
    for label, grid in re.findall(r'<table class="grid" aria-label="([^"]+)">(.*?)</table>', html.read_text()):
        for row, cells in re.findall(r"<tr><th>([^<]+)</th>(.*?)</tr>", grid):
            changed_rows[(label, row)] += sum(map(int, re.findall(r'data-changed="(\d+)"', cells)))
    assert +changed_rows == {("approach cases", "knee medial_midpatellar"): sum(expected.values())}


def test_diff_enumerates_the_audit_spaces() -> None:
    """The diff's spaces are the audit's (plus equipment, which the audit checks apart), whole and
    under a site filter, and every space defined is one of them."""
    kb = load(default_rules_dir())
    whole = diff_spaces(kb, kb)
    assert whole[:-1] == audit_spaces(kb) and whole[-1].name == "equipment"
    assert [s.name for s in audit_spaces(kb)] == list(BUILDERS)
    assert diff_spaces(kb, kb, ("knee",))[:-1] == audit_spaces(kb, quick=True, sites=("knee",))
    assert [s.name for s in diff_spaces(kb, kb, ("hip",))] == ["sites", "equipment"]  # no approach at the hip
