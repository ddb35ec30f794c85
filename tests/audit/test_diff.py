"""Rule-change impact: a planted one-rule change gives exactly the diff a brute force through
the public `recommend` finds; an unchanged copy gives exit 0; bad input gives exit 2."""

from __future__ import annotations

import itertools
import json
import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from guidance_rules import Recommender
from guidance_rules.audit.diff import run_diff
from guidance_rules.audit.diff_report import render
from guidance_rules.cli.commands import main
from guidance_rules.rulebase.conditions import BOOL_FIELDS as FLAGS
from guidance_rules.rulebase.conditions import CASE_FIELDS
from guidance_rules.rulebase.load import default_rules_dir, load
from guidance_rules.rulebase.space import VARIANCE_SETS
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
    got = Counter({(g.site, g.old, g.new): g.count for g in report.groups})
    assert got == expected and expected  # the planted change does change something
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
    report = run_diff(default_rules_dir(), new_dir, workers=1, sites=("knee",))
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
    assert main(["diff", str(default_rules_dir()), str(new_dir), "--site", "knee"]) == 1
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
