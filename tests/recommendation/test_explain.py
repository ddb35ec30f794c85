"""The explanation is tied to what the engine fired (issue 24): dropping a reasoning step, or giving
every step the policy's sources instead of its own rule's, passed every test that only checked that
steps and sources exist. Here each answer is compared with the engine's own firing (its on_fire
hook, memos cleared so every rule of the case really fires) and each step with its rule."""

from __future__ import annotations

from typing import Any

import pytest

from guidance_rules.recommendation.recommender import Recommender
from guidance_rules.rulebase.conditions import CASE_FIELDS
from guidance_rules.rulebase.load import default_knowledge

KB = default_knowledge()
RULES = {rule.id: rule for rule in KB.rules}
CASES = [
    {"site": site, "injectate": injectate, "anatomy_variance": variances, "contrast_confirmation": contrast}
    for site in KB.sites
    for injectate in CASE_FIELDS["injectate"].values[::2]
    for variances in ([], ["obesity"])
    for contrast in (False, True)
]


def _order() -> dict[str, tuple[int, int]]:
    """Each rule's place in a chain: its stratum, then its place in the rule files."""
    strata = Recommender(KB, cache_size=0).compiled.strata
    return {rule.id: (n, rule.index) for n, stratum in enumerate(strata) for rule in stratum.rules}


ORDER = _order()


@pytest.fixture(scope="module")
def engine_run() -> tuple[Recommender, list[str]]:
    fired: list[str] = []
    return Recommender(KB, cache_size=0, on_fire=fired.append), fired


def explained(rec: Recommender, fired: list[str], case: dict[str, Any]) -> tuple[Any, set[str]]:
    """The answer for `case` and the rule ids the engine fired for it (no memo hit hides one)."""
    rec.cache_clear()
    fired.clear()
    answer = rec.recommend(case)
    return answer, set(fired)


@pytest.mark.parametrize(
    "case", CASES, ids=lambda c: f"{c['site']}-{c['injectate']}-{len(c['anatomy_variance'])}{c['contrast_confirmation']:d}"
)
def test_the_chain_is_what_the_engine_fired_each_step_with_its_own_rule(
    engine_run: tuple[Recommender, list[str]], case: dict[str, Any]
) -> None:
    rec, fired = engine_run
    try:
        answer, by_engine = explained(rec, fired, case)
    except ValueError:  # a contradiction (an effusion at a spinal site, say): no answer to explain
        pytest.skip("contradictory case")
    *steps, last = answer.reasoning
    notes = [n.rule for n in (*answer.documentation, *answer.cautions, *answer.questions)]
    chain = [s.rule for s in steps]
    # every derivation and rating rule the engine fired is one step, in stratum order, nothing more
    assert set(chain) == {r for r in by_engine if not RULES[r].is_output}
    assert chain == sorted(chain, key=lambda r: ORDER[r]) and len(set(chain)) == len(chain)
    assert set(notes) == {r for r in by_engine if RULES[r].is_output}
    # each step carries its own rule's conclusion, sources and the values its rule read
    values = rec.resolve(case).values
    for step in steps:
        rule = RULES[step.rule]
        assert (step.conclusion, step.sources) == (rule.conclusion, rule.sources), step.rule
        assert tuple(step.facts) == rule.reads
        assert all(step.facts[f] == values[f] for f in rule.reads if f in values), step.rule
    assert last.rule == KB.policy.id and last.sources == KB.policy.sources
    assert last.conclusion.startswith(f"Recommend {answer.modality.value}: ")
