"""A rule base ten times the shipped one loads, compiles, answers and audits (issue 21, point 10).

The synthetic rules (`benchmarks.large_rulebase`) are spread over every stratum and include the
shape that broke durable-rules before strata were split into parts: many output rules whose
condition starts with a list of modalities (durable-rules' "error code: 107" at compile, or
"303" once a case reaches them). They change no modality and no rating category, so every answer
must equal the shipped rule base's, with only synthetic rules added to what fired.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from benchmarks.large_rulebase import PREFIX, write_large_rulebase
from guidance_rules.audit import check
from guidance_rules.engine import compile as compiler
from guidance_rules.errors import EngineError, RuleFileError
from guidance_rules.recommendation.recommender import Recommender
from guidance_rules.rulebase import limits
from guidance_rules.rulebase.domain import KnowledgeBase
from guidance_rules.rulebase.load import load
from guidance_rules.rulebase.space import space_named


@pytest.fixture(scope="module")
def large(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_large_rulebase(tmp_path_factory.mktemp("large") / "rules", factor=10)


@pytest.fixture(scope="module")
def large_recommender(large: Path) -> Recommender:
    return Recommender(load(large), cache_size=0)


def test_it_holds_ten_times_the_rules_in_every_stratum(large_recommender: Recommender, knowledge: KnowledgeBase) -> None:
    compiled = large_recommender.compiled
    assert len(compiled.knowledge.rules) >= 10 * len(knowledge.rules) >= 700
    for stratum in compiled.strata:
        assert any(r.id.startswith(PREFIX) for r in stratum.rules), f"stratum {stratum.number} has no synthetic rule"
    assert any(len(s.parts) > 1 for s in compiled.strata)  # the compiler had to split a stratum
    assert len(compiled.strata) >= len(Recommender(knowledge).compiled.strata)


def test_one_part_per_stratum_is_what_durable_rules_refused(large: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the split the engine refuses this rule base (the failure the issue reports)."""
    monkeypatch.setattr(compiler, "_pack", lambda rules: [rules] if rules else [])
    with pytest.raises(EngineError, match=r"error code: 10[678]"):
        Recommender(load(large), cache_size=0)


def shipped_cases(knowledge: KnowledgeBase) -> list[dict[str, Any]]:
    cases = [case for rule in knowledge.rules for case in (*rule.fires, *rule.silent)]
    cases += [json.loads(p.read_text())["case"] for p in sorted((Path(__file__).parents[2] / "examples").glob("*.json"))]
    return cases


def test_it_answers_the_shipped_cases_as_the_shipped_rule_base(large_recommender: Recommender, knowledge: KnowledgeBase) -> None:
    shipped = Recommender(knowledge, cache_size=0)
    cases = shipped_cases(knowledge)
    assert len(cases) > 150
    for case in cases:
        mine, theirs = large_recommender.resolve(case).values, shipped.resolve(case).values
        got, want = large_recommender.evaluate(mine), shipped.evaluate(theirs)
        assert got.modality == want.modality, case
        assert {m: r.category for m, r in got.ratings.items()} == {m: r.category for m, r in want.ratings.items()}, case
        assert set(got.fired) >= set(want.fired), case
        assert all(r.startswith(PREFIX) for r in set(got.fired) - set(want.fired)), case


def test_every_synthetic_rule_fires_on_its_example_in_one_session(large_recommender: Recommender) -> None:
    """All examples at once: one engine session holding every part's facts for every case."""
    rules = [r for r in large_recommender.knowledge.rules if r.id.startswith(PREFIX)]
    resolved = [large_recommender.resolve(r.fires[0]).values for r in rules]
    results = large_recommender.evaluate_many(resolved)
    missing = [r.id for r, ev in zip(rules, results, strict=True) if isinstance(ev, EngineError) or r.id not in ev.fired]
    assert not missing


def test_it_audits(large: Path) -> None:
    """The audit passes: static checks, every rule's examples, equipment over every site,
    invariants, and the enumeration of the site space for two sites (the benchmark times the
    whole audit: minutes, as the work grows with the rules). Not the knee: it alone has a named
    approach, whose 36,864 cases would triple the work."""
    two = list(load(large).sites)[1:3]
    report = check.run_audit(large, workers=2, quick=True, sites=two)
    assert [(s.name, s.size) for s in report.spaces] == [("sites", space_named("sites", load(large), two).size)]
    errors = [f.message for f in report.findings if f.level == "error"]
    assert not errors
    assert report.passed


def test_a_rule_base_past_the_engines_rule_limit_is_refused_by_the_loader(large: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The loader names the file and the count (the limit lowered here so the test stays small;
    tests/engine/test_capacity.py shows 4,096 is the engine's own limit)."""
    total = len(load(large).rules)
    monkeypatch.setattr(limits, "MAX_RULES", total - 1)
    with pytest.raises(RuleFileError) as error:
        load(large)
    assert error.value.file == "synthetic.yaml"
    assert f"{total:,} active rules" in str(error.value)
    assert f"past {total - 1:,}" in str(error.value)
