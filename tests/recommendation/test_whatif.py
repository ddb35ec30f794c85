"""What-if explanations: routes are correct (applying one gives its modality) and minimal (no
smaller change does), checked against a brute force over raw field values through the public
`recommend`; inputs that matter likewise; and the command line."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from guidance_rules import Modality, Recommender
from guidance_rules.cli import main
from guidance_rules.recommendation.whatif import Change, WhatIf, inputs_that_matter, what_if
from guidance_rules.rulebase.conditions import CASE_FIELDS

EDITABLE = [f for f in CASE_FIELDS if f != "available_modalities"]
VARIANCES = CASE_FIELDS["anatomy_variance"].values


def _resolved(rec: Recommender, case: dict[str, Any]) -> dict[str, Any]:
    values = rec.resolve(case).values
    return {f: values[f] for f in CASE_FIELDS}


def _single_changes(rec: Recommender, case: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Every one-unit change over raw values: another value of a scalar field, or one variance
    added or removed. Fields fixed by a named site are left alone."""
    values = _resolved(rec, case)
    fixed = set(rec.knowledge.identity_fields) if case.get("site") else set()
    out: list[tuple[Any, ...]] = []
    for name in EDITABLE:
        if name in fixed:
            continue
        if name == "anatomy_variance":
            out += [("anatomy_variance", item, item not in values[name]) for item in VARIANCES]
        else:
            out += [(name, v) for v in CASE_FIELDS[name].values if v != values[name]]
    return out


def _apply(rec: Recommender, case: dict[str, Any], changes: tuple[tuple[Any, ...], ...]) -> dict[str, Any] | None:
    values = _resolved(rec, case)
    explicit: dict[str, Any] = {"site": case.get("site"), **{k: v for k, v in values.items() if k != "available_modalities"}}
    if explicit["site"] is not None:
        for name in rec.knowledge.identity_fields:
            explicit.pop(name)
    variances = set(values["anatomy_variance"])
    for change in changes:
        if change[0] == "anatomy_variance":
            (variances.add if change[2] else variances.discard)(change[1])
        else:
            explicit[change[0]] = change[1]
    explicit["anatomy_variance"] = sorted(variances)
    try:
        return explicit if rec.resolve(explicit) else None
    except ValidationError:
        return None


def _brute(rec: Recommender, case: dict[str, Any], most: int) -> dict[Modality, set[frozenset[tuple[Any, ...]]]]:
    """For each modality, every smallest set (of at most `most` raw changes) that gives it."""
    singles = _single_changes(rec, case)
    base = rec.recommend(case).modality
    found: dict[Modality, set[frozenset[tuple[Any, ...]]]] = {}
    for size in range(1, most + 1):
        level: dict[Modality, set[frozenset[tuple[Any, ...]]]] = {}
        for combo in itertools.combinations(singles, size):
            if len({c[0] if c[0] != "anatomy_variance" else c[:2] for c in combo}) < size:
                continue  # two values for one field
            applied = _apply(rec, case, combo)
            if applied is None:
                continue
            modality = rec.recommend(applied).modality
            if modality is not base and modality not in found:
                level.setdefault(modality, set()).add(frozenset(combo))
        found.update(level)
    return found


def _expand(change: Change) -> list[tuple[Any, ...]]:
    if change.item is not None:
        return [("anatomy_variance", item, bool(change.after)) for item in (change.item, *change.or_instead)]
    return [(change.field, value) for value in (change.after, *change.or_instead)]


def _route_sets(result: WhatIf) -> dict[Modality, set[frozenset[tuple[Any, ...]]]]:
    out: dict[Modality, set[frozenset[tuple[Any, ...]]]] = {}
    for alt in result.alternatives:
        for route in alt.routes:
            for combo in itertools.product(*(_expand(c) for c in route.changes)):
                out.setdefault(alt.modality, set()).add(frozenset(combo))
    return out


SAMPLE = [
    {"site": "knee", "injectate": "corticosteroid"},
    {"site": "knee", "injectate": "prp", "anatomy_variance": ["obesity", "effusion"]},
    {"site": "hip", "injectate": "cell_based", "anatomy_variance": ["obesity"]},
    {"site": "lumbar_facet", "injectate": "corticosteroid"},
    {"site": "epidural_transforaminal", "injectate": "local_anesthetic", "contrast_confirmation": True},
    {"site": "a1_pulley", "injectate": "corticosteroid", "palpable": True},
    {"region": "peripheral", "depth": "superficial", "tissue": "tendon_sheath", "injectate": "hyaluronic_acid"},
    {"region": "spinal", "depth": "intermediate", "tissue": "nerve", "injectate": "other", "near_neurovascular": True},
    {"region": "peripheral", "depth": "deep", "tissue": "joint", "injectate": "prp", "bone_obscures_path": True},
]


@pytest.mark.parametrize("case", SAMPLE, ids=lambda c: "-".join(str(v) for v in c.values()))
def test_routes_are_exactly_the_smallest_changes(recommender: Recommender, case: dict[str, Any]) -> None:
    """Exhaustive: every smallest set of up to two raw changes, found by brute force through
    `recommend`, is a route (with its equivalent values), and nothing else is."""
    result = what_if(case, recommender, max_changes=2)
    brute = _brute(recommender, case, 2)
    assert _route_sets(result) == brute
    for alt in result.alternatives:
        assert alt.reachable == (alt.modality in brute)
        if alt.reachable:
            assert alt.changes_needed == len(next(iter(brute[alt.modality])))


def test_three_changes_exhaustively(recommender: Recommender) -> None:
    case = {"region": "spinal", "depth": "deep", "tissue": "epidural", "injectate": "corticosteroid"}
    assert _route_sets(what_if(case, recommender, max_changes=3)) == _brute(recommender, case, 3)


def test_reasoning_steps_that_change(recommender: Recommender) -> None:
    case = {"site": "knee", "injectate": "corticosteroid", "anatomy_variance": ["obesity"]}
    result = what_if(case, recommender)
    base = {step.rule for step in recommender.recommend(case).reasoning}
    for alt in result.alternatives:
        for route in alt.routes:
            changes = tuple(_expand(c)[0] for c in route.changes)
            applied = _apply(recommender, case, changes)
            assert applied is not None
            after = {step.rule for step in recommender.recommend(applied).reasoning}
            policy = recommender.knowledge.policy.id
            assert set(route.steps_removed) == base - after - {policy}
            assert set(route.steps_added) == after - base - {policy}


def test_unreachable_only_after_the_whole_neighbourhood(recommender: Recommender) -> None:
    """A spinal target can never be superficial, so landmark is out of reach; said only when
    the search was exhaustive."""
    bounded = what_if({"site": "lumbar_facet", "injectate": "corticosteroid"}, recommender, max_changes=1)
    assert not bounded.exhaustive
    full = what_if({"site": "lumbar_facet", "injectate": "corticosteroid"}, recommender, max_changes=None)
    assert full.exhaustive
    landmark = next(a for a in full.alternatives if a.modality is Modality.LANDMARK)
    assert not landmark.reachable and landmark.routes == ()


def test_result_is_json(recommender: Recommender) -> None:
    result = what_if({"site": "hip", "injectate": "prp"}, recommender)
    data = json.loads(json.dumps(result.model_dump(mode="json")))
    assert data["modality"] == result.modality.value
    assert "available_modalities" not in data["changeable"]
    assert {a["modality"] for a in data["alternatives"]} == {m.value for m in Modality} - {data["modality"]}


def test_invalid_input_gets_no_answer(recommender: Recommender) -> None:
    with pytest.raises(ValidationError):
        what_if({"site": "knee", "injectate": "water"}, recommender)
    with pytest.raises(ValueError, match="max_changes"):
        what_if({"site": "knee", "injectate": "prp"}, recommender, max_changes=-1)


@pytest.mark.parametrize("case", SAMPLE[:6], ids=lambda c: "-".join(str(v) for v in c.values()))
def test_inputs_that_matter_by_brute_force(recommender: Recommender, case: dict[str, Any]) -> None:
    """An assumed value matters exactly when some other value of that field, given explicitly,
    changes the recommended modality."""
    base = recommender.recommend(case)
    items = {item.field: item for item in inputs_that_matter(case, recommender)}
    for assumption in base.assumptions:
        if assumption.field == "available_modalities" or assumption.field in recommender.knowledge.identity_fields:
            assert assumption.field not in items
            continue
        others: list[Any]
        if assumption.field == "anatomy_variance":
            others = [list(s) for n in range(1, 5) for s in itertools.combinations(VARIANCES, n)]
        else:
            others = [v for v in CASE_FIELDS[assumption.field].values if v != assumption.value]
        changed = valid = False
        for other in others:
            try:
                changed |= recommender.recommend({**case, assumption.field: other}).modality is not base.modality
                valid = True
            except ValidationError:
                continue
        if not valid:  # no other value gives a case (palpable at a deep site): not offered to confirm
            assert assumption.field not in items, assumption.field
            continue
        assert items[assumption.field].matters == changed, assumption.field


case_strategy = st.one_of(
    st.fixed_dictionaries(
        {"site": st.sampled_from(sorted(__import__("guidance_rules.rulebase.load", fromlist=["x"]).default_knowledge().sites))},
        optional={
            "injectate": st.sampled_from(CASE_FIELDS["injectate"].values),
            "depth": st.sampled_from(CASE_FIELDS["depth"].values),
            "palpable": st.booleans(),
            "anatomy_variance": st.lists(st.sampled_from(VARIANCES), unique=True),
            "near_neurovascular": st.booleans(),
            "contrast_confirmation": st.booleans(),
        },
    ),
    st.fixed_dictionaries({f: st.sampled_from(CASE_FIELDS[f].values) for f in ("region", "depth", "tissue")}),
).map(lambda c: {"injectate": "corticosteroid", **c})


@settings(max_examples=40)
@given(case_strategy)
def test_routes_correct_and_minimal_property(case: dict[str, Any]) -> None:
    rec = _shared()
    try:
        base = rec.recommend(case).modality
    except ValidationError:
        return
    result = what_if(case, rec, max_changes=2)
    singles = {}
    for change in _single_changes(rec, case):
        applied = _apply(rec, case, (change,))
        if applied is not None:
            singles.setdefault(rec.recommend(applied).modality, []).append(change)
    for alt in result.alternatives:
        if alt.modality in singles:  # one change reaches it: so must the result, with one
            assert alt.changes_needed == 1
        for route in alt.routes:
            assert len(route.changes) == alt.changes_needed
            applied = _apply(rec, case, tuple(_expand(c)[-1] for c in route.changes))
            assert applied is not None and rec.recommend(applied).modality is alt.modality
    assert result.modality is base


_rec: list[Recommender] = []


def _shared() -> Recommender:
    if not _rec:
        _rec.append(Recommender())
    return _rec[0]


def test_cli_what_if(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["what-if", "--site", "knee", "--injectate", "corticosteroid", "--variance", "obesity"]) == 0
    out = capsys.readouterr().out
    assert "LANDMARK: 1 change" in out and "remove anatomy_variance obesity" in out
    assert main(["what-if", "--site", "knee", "--injectate", "corticosteroid", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["modality"] == "landmark" and data["max_changes"] == 3


def test_cli_what_if_invalid(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["what-if", "--site", "kne", "--injectate", "corticosteroid"]) == 2
    assert "site" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stopped:  # argparse refuses it, as every option's bad value
        main(["what-if", "--site", "knee", "--injectate", "prp", "--max-changes", "-1"])
    assert stopped.value.code == 2 and "--max-changes" in capsys.readouterr().err


def test_recommend_shows_inputs_that_matter(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["recommend", "--site", "knee", "--injectate", "corticosteroid"]) == 0
    out = capsys.readouterr().out
    section = out.split("Inputs that matter", 1)[1]
    assert "palpable = true (from site:knee): if false → ultrasound" in section
    assert main(["recommend", "--site", "knee", "--injectate", "corticosteroid", "--json"]) == 0
    assert "Inputs that matter" not in capsys.readouterr().out  # the contract's JSON is unchanged


def test_changeable_lists_only_fields_a_change_to_which_gives_a_case(recommender: Recommender) -> None:
    """approach names a path into the knee: at a hip every value of it is a contradiction, so it is
    not offered as a field that could change the answer (review finding)."""
    hip = what_if({"site": "hip", "injectate": "corticosteroid"}, recommender)
    knee = what_if({"site": "knee", "injectate": "corticosteroid"}, recommender)
    assert "approach" not in hip.changeable and "approach" in knee.changeable
    assert "approach" not in {a.field for a in hip.inputs_that_matter} and "approach" in {a.field for a in knee.inputs_that_matter}
    assert "depth" in hip.changeable


@pytest.mark.parametrize(
    ("options", "said"),
    [(["--max-changes", "2", "--exhaustive"], "not allowed with argument --max-changes"), (["--max-changes", "0"], "must be 1 or more")],
)
def test_the_command_takes_a_bound_or_exhaustive_not_both(capsys: pytest.CaptureFixture[str], options: list[str], said: str) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["what-if", "--site", "knee", "--injectate", "prp", *options])
    assert stopped.value.code == 2 and said in capsys.readouterr().err
