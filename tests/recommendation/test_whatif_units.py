"""What-if, piece by piece (issue 24: mutation testing of whatif.py): every route and every
outcome of an assumed input really gives its modality when applied through `recommend`, the
steps that change are listed in chain order, the evidence-based route says the rule's own step,
`changeable` lists exactly the fields a change to which gives a case, and the answer does not
depend on the engine block size or the memo of evaluated candidates."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from guidance_rules import Modality, Recommender
from guidance_rules.cli import main
from guidance_rules.recommendation import whatif
from guidance_rules.recommendation.whatif import Change, WhatIf, inputs_that_matter, what_if
from guidance_rules.rulebase.conditions import CASE_FIELDS, EQUIPMENT_FIELD
from guidance_rules.rulebase.load import default_knowledge, load

KB = default_knowledge()
CASES: list[dict[str, Any]] = [
    {"site": "knee", "injectate": "corticosteroid"},
    {"site": "hip", "injectate": "corticosteroid"},
    {"site": "a1_pulley", "injectate": "corticosteroid"},
    {"site": "sacroiliac", "injectate": "corticosteroid"},
    {"site": "knee", "injectate": "corticosteroid", "anatomy_variance": ["effusion"]},  # a possible modality after one without figures
    {"site": "knee", "injectate": "prp", "anatomy_variance": ["obesity", "effusion"]},
    {"region": "peripheral", "depth": "deep", "tissue": "joint", "injectate": "prp"},
    {"region": "peripheral", "depth": "superficial", "tissue": "tendon", "injectate": "corticosteroid", "palpable": True},
]


def given(rec: Recommender, case: dict[str, Any]) -> dict[str, Any]:
    """The case as a user would give it in full: the named site and every value it resolved to
    (the site's identity fields left to the site)."""
    values = rec.resolve(case).values
    out = {"site": case.get("site"), **{f: values[f] for f in CASE_FIELDS if f != EQUIPMENT_FIELD}}
    if out["site"] is not None:
        for name in KB.identity_fields:
            out.pop(name)
    else:
        out.pop("site")
    return out


def applied(rec: Recommender, case: dict[str, Any], changes: tuple[Change, ...], pick: int = 0) -> dict[str, Any]:
    """The case with these changes made as a user would make them (`pick`: which of the equivalent values)."""
    out = given(rec, case)
    variances = set(out["anatomy_variance"])
    for change in changes:
        options = (change.item, *change.or_instead) if change.item is not None else (change.after, *change.or_instead)
        value = options[min(pick, len(options) - 1)]
        if change.item is not None:
            assert (change.item in variances) is change.before
            (variances.add if change.after else variances.discard)(value)
        else:
            assert out[change.field] == change.before
            out[change.field] = value
    out["anatomy_variance"] = sorted(variances)
    return out


def chain(rec: Recommender, case: dict[str, Any]) -> list[str]:
    """The derivation and rating rules that fired, in the engine's order."""
    return [r.id for r in rec.evaluate(rec.resolve(case).values).chain]


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(str(v) for v in c.values()))
def test_each_route_gives_its_modality_and_lists_the_changed_steps_in_chain_order(recommender: Recommender, case: dict[str, Any]) -> None:
    result = what_if(case, recommender, max_changes=2)
    base = chain(recommender, case)
    assert result.modality is recommender.recommend(case).modality
    assert [a.modality for a in result.alternatives] == [m for m in Modality if m is not result.modality]
    for alt in result.alternatives:
        assert alt.reachable == bool(alt.routes) and (alt.changes_needed is None) == (not alt.reachable)
        for route in alt.routes:
            assert len(route.changes) == alt.changes_needed
            for pick in (0, 1):  # a value named or_instead has the same effect
                changed = applied(recommender, case, route.changes, pick)
                assert recommender.recommend(changed).modality is alt.modality, (route, pick)
            after = chain(recommender, applied(recommender, case, route.changes))
            assert list(route.steps_removed) == [r for r in base if r not in after]
            assert list(route.steps_added) == [r for r in after if r not in base]


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(str(v) for v in c.values()))
def test_each_outcome_of_an_assumed_input_is_what_recommend_gives(recommender: Recommender, case: dict[str, Any]) -> None:
    """Every other value listed for an assumed input gives the modality listed, which differs from
    the answer; every other value of a scalar field that changes the modality is listed."""
    answer = recommender.recommend(case)
    items = inputs_that_matter(case, recommender)
    assumed = {a.field: (a.value, a.origin) for a in answer.assumptions}
    assert all(assumed[i.field] == (i.value, i.origin) for i in items)
    for item in items:
        assert item.matters == bool(item.otherwise)
        listed = set()
        for outcome in item.otherwise:
            assert outcome.modality is not answer.modality
            assert all(c.field == item.field for c in outcome.changes)
            for pick in range(max(1 + len(c.or_instead) for c in outcome.changes)):  # each equivalent value
                changed = applied(recommender, case, outcome.changes, pick)
                assert recommender.recommend(changed).modality is outcome.modality, (item.field, outcome)
                listed.add(str(changed[item.field]))
        if CASE_FIELDS[item.field].is_list:
            continue
        for value in CASE_FIELDS[item.field].values:
            try:
                modality = recommender.recommend({**given(recommender, case), item.field: value}).modality
            except ValidationError:
                continue
            assert (modality is not answer.modality) == (str(value) in listed), (item.field, value)


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(str(v) for v in c.values()))
def test_changeable_is_every_field_a_change_to_which_gives_a_case(recommender: Recommender, case: dict[str, Any]) -> None:
    result = what_if(case, recommender, max_changes=0)
    site = KB.sites.get(case.get("site") or "")
    fixed = {*KB.identity_fields, *site.fixed} if site is not None else set()
    read = {t.field for r in KB.rules if not r.is_output for t in r.tests} | {t.field for c in KB.constraints for t in c.tests}
    full = given(recommender, case)
    expected = []
    for name, spec in CASE_FIELDS.items():
        if name == EQUIPMENT_FIELD or name in fixed or name not in read:
            continue
        others: list[Any] = [[v] for v in spec.values if v not in full[name]] if spec.is_list else list(spec.values)
        others += [[]] if spec.is_list and full[name] else []
        for other in others:
            if other == full[name]:
                continue
            try:
                recommender.recommend({**full, name: other})
            except ValidationError:
                continue
            expected.append(name)
            break
    assert list(result.changeable) == expected


def test_no_change_allowed_reaches_nothing_and_says_so(recommender: Recommender) -> None:
    result = what_if({"site": "knee", "injectate": "corticosteroid"}, recommender, max_changes=0)
    assert result.max_changes == 0 and not result.exhaustive
    assert all(not a.reachable and a.routes == () and a.changes_needed is None for a in result.alternatives)
    assert result.also_possible == what_if({"site": "knee", "injectate": "corticosteroid"}, recommender).also_possible


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(str(v) for v in c.values()))
def test_the_evidence_based_route_says_the_rules_step_as_the_reader_sees_it(recommender: Recommender, case: dict[str, Any]) -> None:
    """Offered exactly for another modality rated may be appropriate by a rule that quotes the
    site's own figure, with that rule's step of the answer as its reason."""
    answer = recommender.recommend(case)
    steps = {s.rule: s.conclusion for s in answer.reasoning}
    site = KB.sites.get(case.get("site") or "")
    points = {p for row in site.evidence for p in row.points} if site is not None else set()
    expected = []
    for modality in Modality:
        rating = answer.ratings[modality.value]
        if modality is answer.modality or rating.category.value != "may_be_appropriate":
            continue
        if any(points & set(next(r for r in KB.rules if r.id == rid).figures) for rid in rating.rules):
            expected.append((modality, rating.rules, " ".join(steps[r] for r in rating.rules if r in steps)))
    possible = what_if(case, recommender, max_changes=0).also_possible
    assert [(p.modality, p.rules, p.reason) for p in possible] == expected
    assert all(p.reason for p in possible)


def _plain(result: WhatIf) -> dict[str, Any]:
    data = result.model_dump(mode="json")
    data.pop("cases_evaluated")
    return data


def test_the_answer_does_not_depend_on_the_block_size_or_the_memo(monkeypatch: pytest.MonkeyPatch) -> None:
    """Candidates are evaluated in engine blocks and remembered (bounded): a small block and a
    memo cleared every few candidates give the same answer as the defaults."""
    case = {"site": "knee", "injectate": "prp", "anatomy_variance": ["obesity"]}
    expected = what_if(case, Recommender(KB), max_changes=3)
    monkeypatch.setattr(whatif, "BLOCK", 7)
    monkeypatch.setattr(whatif, "MEMO_LIMIT", 50)
    small = Recommender(KB)
    first = what_if(case, small, max_changes=3)
    assert _plain(first) == _plain(expected) and first.cases_evaluated == expected.cases_evaluated
    again = what_if(case, small, max_changes=3)  # partly from the memo
    assert _plain(again) == _plain(expected)
    assert len(whatif._memo(small)) <= 50 + first.cases_evaluated


def _contrast_by_default(data: dict[str, Any]) -> None:
    data["fields"]["contrast_confirmation"] = True


def test_the_recommender_given_is_the_one_asked(rule_copy: Any) -> None:
    """A rule base of one's own (here contrast confirmation assumed wanted): what-if and the
    inputs that matter are about its answer, not the shipped rule base's."""
    rec = Recommender(load(rule_copy("defaults.yaml", _contrast_by_default)), cache_size=0)
    case = {"region": "peripheral", "depth": "deep", "tissue": "joint", "injectate": "prp"}
    answer = rec.recommend(case)
    assert answer.modality is not Recommender(KB).recommend(case).modality  # the two rule bases differ here
    assumed = {(a.field, a.value, a.origin) for a in answer.assumptions}
    assert ("contrast_confirmation", True, "default") in assumed
    items = [(i.field, i.value, i.origin) for i in inputs_that_matter(case, rec)]
    assert ("contrast_confirmation", True, "default") in items and set(items) <= assumed
    result = what_if(case, rec, max_changes=1)
    assert result.modality is answer.modality
    assert [(i.field, i.value, i.origin) for i in result.inputs_that_matter] == items


def test_the_library_and_the_command_search_the_same_default_bound(capsys: pytest.CaptureFixture[str]) -> None:
    """`what_if` without a bound and `guidance-rules what-if` without --max-changes give the same
    answer: one default, said in both places."""
    result = what_if({"site": "knee", "injectate": "corticosteroid", "anatomy_variance": ["obesity"]})
    assert main(["what-if", "--site", "knee", "--injectate", "corticosteroid", "--variance", "obesity", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == result.model_dump(mode="json")
    assert result.max_changes is not None and not result.exhaustive
