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
    chain = list(answer.chain_rules())[:-1]  # a grouped step (issue 19) names each of its reasons' rules
    # every derivation and rating rule the engine fired is in the chain, in stratum order, once
    assert set(chain) == {r for r in by_engine if not RULES[r].is_output}
    assert len(set(chain)) == len(chain)
    strata = [ORDER[step.rule][0] for step in steps]  # steps follow the strata (reasons group within one)
    assert strata == sorted(strata), strata
    assert set(notes) == {r for r in by_engine if RULES[r].is_output}
    values = rec.resolve(case).values
    for step in steps:
        for reason in step.reasons or (step,):
            rule = RULES[reason.rule]
            # each reason says its own rule's conclusion (a figure of the site may follow it) and
            # cites its own rule's sources, chosen for the case; only a rule that names figures adds
            # the site's own evidence
            said = reason.conclusion
            if isinstance(reason, type(step)) and reason.overridden_by:  # marked (issue 19), its text after the mark
                verb = "Overruled" if rule.derive else "Overridden"  # a reason the answer overrules, a rating overridden
                mark = f"{verb} by {reason.overridden_by}: "
                assert said.startswith(mark), reason.rule
                said = said[len(mark) :]
                assert said[:1] == rule.conclusion[:1].lower()
                said = rule.conclusion[:1] + said[1:]
            assert said.startswith(rule.conclusion), reason.rule
            foreign = [c for c in reason.sources if c not in rule.sources]
            assert not foreign or rule.figures, (reason.rule, foreign)
        if not step.reasons:
            assert tuple(step.facts) == RULES[step.rule].reads
            assert all(step.facts[f] == values[f] for f in RULES[step.rule].reads if f in values), step.rule
    assert last.rule == KB.policy.id and set(KB.policy.sources) & set(last.sources)
    assert last.conclusion.startswith(f"Recommend {answer.modality.value}: ")
