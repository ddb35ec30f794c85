"""Fast unit tests of the invariant layer (guidance_rules.audit.invariants): loading invariants.yaml
from small hand-written files, checking answers, keeping the smallest counterexamples, and the
findings made of them, each on a few hand-built cases (issue 24: mutation testing of the audit;
the planted-fault audits in test_check.py take seconds each, too slow to run per mutant).
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from guidance_rules.audit.findings import KEEP, Breach, Finding, SpaceResult
from guidance_rules.audit.invariants import (
    Answer,
    Escalation,
    Invariant,
    InvariantSet,
    answer_of,
    invariant_example_findings,
    invariant_findings,
    load_invariants,
    minimal_case,
    weight,
)
from guidance_rules.engine.policy import RatingResult
from guidance_rules.errors import RuleFileError
from guidance_rules.model import Category, Citation, Modality
from guidance_rules.recommendation.explain import Evaluation
from guidance_rules.recommendation.recommender import Recommender
from guidance_rules.rulebase.conditions import CASE_FIELDS
from guidance_rules.rulebase.conditions import Test as Cond
from guidance_rules.rulebase.domain import KnowledgeBase
from guidance_rules.rulebase.load import cite, default_knowledge

KB = default_knowledge()
REC = Recommender(KB, cache_size=0)  # compiled once, at import
US, FL, BOTH, LM = Modality.ULTRASOUND, Modality.FLUOROSCOPY, Modality.BOTH, Modality.LANDMARK
NOT, MAY, USUALLY = Category.USUALLY_NOT_APPROPRIATE, Category.MAY_BE_APPROPRIATE, Category.USUALLY_APPROPRIATE
RATINGS = {US: USUALLY, FL: MAY, BOTH: NOT, LM: NOT}
KNEE = {"site": "knee", "injectate": "corticosteroid"}
HIP = {"site": "hip", "injectate": "corticosteroid"}


def cond(field: str, *values: Any, negated: bool = False) -> Cond:
    return Cond(field, frozenset(values), negated, CASE_FIELDS[field].is_list if field in CASE_FIELDS else False)


def invariant(
    inv_id: str = "INV-T",
    tests: tuple[Cond, ...] = (),
    hold: tuple[Cond, ...] = (),
    bounds: tuple[tuple[Modality, str, Category], ...] = (),
    notes: tuple[str, ...] = (),
    covers: tuple[dict[str, Any], ...] = (),
    outside: tuple[dict[str, Any], ...] = (),
) -> Invariant:
    return Invariant(inv_id, f"{inv_id} statement.", tests, hold, bounds, notes, (), covers, outside)


def escalation(esc_id: str, field: str, steps: tuple[tuple[Any, Any], ...], covers: Any = (), outside: Any = ()) -> Escalation:
    return Escalation(esc_id, "a statement", field, steps, (), tuple(covers), tuple(outside))


# ---- checking one answer ---------------------------------------------------------------


def test_applies_is_every_when_test() -> None:
    inv = invariant(tests=(cond("depth", "deep"), cond("palpable", False)))
    assert inv.applies({"depth": "deep", "palpable": False})
    assert not inv.applies({"depth": "deep", "palpable": True})
    assert not inv.applies({"depth": "superficial", "palpable": False})
    assert invariant().applies({})  # no test: every case


def test_a_failed_hold_names_the_test_and_the_value() -> None:
    inv = invariant(hold=(cond("near_neurovascular", True), cond("anatomy_variance", "effusion", negated=True)))
    values = {"near_neurovascular": False, "anatomy_variance": ("effusion",)}
    said = "required near_neurovascular is true, but near_neurovascular is false"
    assert inv.breach(Answer(values, RATINGS, frozenset())) == said
    values["near_neurovascular"] = True
    said = "required anatomy_variance includes none of effusion, but anatomy_variance is [effusion]"
    assert inv.breach(Answer(values, RATINGS, frozenset())) == said
    values["anatomy_variance"] = ("obesity", "effusion")
    assert inv.breach(Answer(values, RATINGS, frozenset())).endswith("anatomy_variance is [obesity, effusion]")  # type: ignore[union-attr]
    values["anatomy_variance"] = ()
    assert inv.breach(Answer(values, RATINGS, frozenset())) is None
    plain = invariant(hold=(cond("depth", "deep"),))
    assert plain.breach(Answer({"depth": "superficial"}, RATINGS, frozenset())) == "required depth is deep, but depth is superficial"


def test_missing_notes_are_named_one_or_many() -> None:
    inv = invariant(notes=("DOC-A", "Q-B"))
    assert inv.breach(Answer({}, RATINGS, frozenset({"DOC-A", "Q-B", "X"}))) is None
    assert inv.breach(Answer({}, RATINGS, frozenset({"DOC-A"}))) == "required Q-B in the answer, but it is missing"
    assert inv.breach(Answer({}, RATINGS, frozenset())) == "required DOC-A, Q-B in the answer, but they are missing"


def test_hold_is_checked_before_bounds_and_bounds_before_notes() -> None:
    inv = invariant(hold=(cond("depth", "deep"),), bounds=((US, "at_most", NOT),), notes=("DOC-A",))
    broken_all = Answer({"depth": "superficial"}, RATINGS, frozenset())
    assert inv.breach(broken_all) == "required depth is deep, but depth is superficial"
    bounds_and_notes = Answer({"depth": "deep"}, RATINGS, frozenset())
    assert inv.breach(bounds_and_notes) == "required ultrasound rated at most usually_not_appropriate, but it is rated usually_appropriate"
    only_notes = Answer({"depth": "deep"}, {**RATINGS, US: NOT}, frozenset())
    assert inv.breach(only_notes) == "required DOC-A in the answer, but it is missing"


def test_every_bound_is_checked_not_only_the_first() -> None:
    inv = invariant(bounds=((US, "at_least", MAY), (FL, "at_least", USUALLY), (LM, "at_most", NOT)))
    assert inv.breach(Answer({}, {**RATINGS, FL: USUALLY}, frozenset())) is None
    assert inv.breach(Answer({}, RATINGS, frozenset())) == (
        "required fluoroscopy rated at least usually_appropriate, but it is rated may_be_appropriate"
    )
    assert inv.breach(Answer({}, {**RATINGS, FL: USUALLY, LM: MAY}, frozenset())) == (
        "required landmark rated at most usually_not_appropriate, but it is rated may_be_appropriate"
    )


def test_the_set_yields_only_invariants_that_apply_and_fail() -> None:
    deep = invariant("INV-DEEP", tests=(cond("depth", "deep"),), hold=(cond("palpable", False),))
    any_case = invariant("INV-ANY", hold=(cond("palpable", False),))
    satisfied = invariant("INV-OK", hold=(cond("depth", "superficial"),))
    invariants = InvariantSet((deep, any_case, satisfied), ())
    found = list(invariants.breaches(Answer({"depth": "superficial", "palpable": True}, RATINGS, frozenset())))
    assert found == [(any_case, "required palpable is false, but palpable is true")]
    found = list(invariants.breaches(Answer({"depth": "deep", "palpable": True}, RATINGS, frozenset())))
    assert [i.id for i, _ in found] == ["INV-DEEP", "INV-ANY", "INV-OK"]


def test_an_escalation_stands_low_only_at_a_from_value_of_the_same_type() -> None:
    flag = escalation("INV-E", "near_neurovascular", ((False, True),))
    assert flag.stands_low(False)
    assert not flag.stands_low(True)
    assert not flag.stands_low(0)  # 0 == False, but no flag value
    depth = escalation("INV-D", "depth", (("superficial", "intermediate"), ("intermediate", "deep")))
    assert depth.stands_low("superficial") and depth.stands_low("intermediate") and not depth.stands_low("deep")


# ---- loading invariants.yaml -----------------------------------------------------------


def _kb_with(tmp_path: Path, data: dict[str, Any]) -> KnowledgeBase:
    """The shipped rule base, but reading this invariants.yaml (from a folder of its own, so the
    per-folder cache of load_invariants cannot answer for it)."""
    (tmp_path / "invariants.yaml").write_text(json.dumps(data))  # JSON is YAML, with no anchors
    return dataclasses.replace(KB, directory=tmp_path)


EXAMPLES = {"covers": [KNEE], "outside": [HIP]}
SOURCES = [{"source": "article", "locator": "LM6"}, {"source": "hong2014", "locator": "any locator at all"}]


def _inv(**changes: Any) -> dict[str, Any]:
    item = {
        "id": "INV-ONE",
        "statement": "A statement long enough.",
        "when": {"site": "knee", "depth": {"not": ["deep"]}},
        "must": {"hold": {"modality": {"not": ["both"]}}},
        "sources": SOURCES,
        "examples": EXAMPLES,
    }
    item.update(changes)
    return item


def _esc(**changes: Any) -> dict[str, Any]:
    item = {
        "id": "INV-ESC",
        "statement": "A statement long enough.",
        "field": "depth",
        "steps": [["superficial", "intermediate"], ["intermediate", "deep"]],
        "sources": [{"source": "article", "locator": "LM3"}],
        "examples": EXAMPLES,
    }
    item.update(changes)
    return item


def test_an_invariant_loads_with_every_part(tmp_path: Path) -> None:
    must = {
        "hold": {"modality": {"not": ["both"]}, "landmark_suitable": True},
        "ratings": {
            "ultrasound": {"at_least": "may_be_appropriate", "at_most": "usually_appropriate"},
            "both": {"at_most": "may_be_appropriate"},
        },
        "notes": ["DOC-LANDMARK-BASIS", "Q-UNGUIDED-BASIS"],
    }
    loaded = load_invariants(_kb_with(tmp_path, {"invariants": [_inv(must=must)]}))
    assert loaded.escalations == ()
    [inv] = loaded.invariants
    assert (inv.id, inv.statement) == ("INV-ONE", "A statement long enough.")
    assert inv.tests == (Cond("site", frozenset({"knee"})), Cond("depth", frozenset({"deep"}), negated=True))
    assert inv.hold == (Cond("modality", frozenset({"both"}), negated=True), Cond("landmark_suitable", frozenset({True})))
    assert inv.bounds == ((US, "at_least", MAY), (US, "at_most", USUALLY), (BOTH, "at_most", MAY))
    assert inv.notes == ("DOC-LANDMARK-BASIS", "Q-UNGUIDED-BASIS")
    assert inv.sources == (cite(KB.sources, "article", "LM6"), Citation(source="hong2014", locator="any locator at all"))
    assert inv.sources[0].locator.endswith(" - LM6")  # an article proposition is cited with its section
    assert (inv.covers, inv.outside) == ((KNEE,), (HIP,))


def test_bounds_alone_or_notes_alone_are_enough(tmp_path: Path) -> None:
    bounds = _inv(id="INV-B", must={"ratings": {"landmark": {"at_most": "usually_not_appropriate"}}})
    notes = _inv(id="INV-N", must={"notes": ["DOC-LANDMARK-BASIS"]})
    loaded = load_invariants(_kb_with(tmp_path, {"invariants": [bounds, notes]}))
    assert [(i.id, i.hold, i.bounds, i.notes) for i in loaded.invariants] == [
        ("INV-B", (), ((LM, "at_most", NOT),), ()),
        ("INV-N", (), (), ("DOC-LANDMARK-BASIS",)),
    ]


def test_escalations_load_pairs_and_add(tmp_path: Path) -> None:
    flags = _esc(id="INV-FLAG", field="near_neurovascular", steps=[[False, True]])
    added = _esc(id="INV-ADD", field="anatomy_variance", steps="add")
    loaded = load_invariants(_kb_with(tmp_path, {"escalations": [_esc(), flags, added]}))
    assert loaded.invariants == ()
    depth, flag, add = loaded.escalations
    assert (depth.id, depth.statement, depth.field) == ("INV-ESC", "A statement long enough.", "depth")
    assert depth.steps == (("superficial", "intermediate"), ("intermediate", "deep"))
    assert depth.sources == (cite(KB.sources, "article", "LM3"),)
    assert (depth.covers, depth.outside) == ((KNEE,), (HIP,))
    assert flag.steps == ((False, True),)
    variances = CASE_FIELDS["anatomy_variance"].values
    # every set of variances with one more added: n * 2^(n-1) steps, each from a sorted set to a sorted superset by one
    assert len(add.steps) == len(set(add.steps)) == len(variances) * 2 ** (len(variances) - 1)
    for low, high in add.steps:
        assert low == tuple(sorted(low)) and high == tuple(sorted(high)) and len(high) == len(low) + 1 and set(low) < set(high)
    assert ((), (variances[0],)) in add.steps and (tuple(sorted(variances[1:])), tuple(sorted(variances))) in add.steps


def _two_value_add_steps() -> tuple[tuple[Any, Any], ...]:
    from guidance_rules.audit import invariants

    return invariants._list_steps(("b", "a"))


def test_list_steps_over_two_values() -> None:
    assert set(_two_value_add_steps()) == {((), ("b",)), ((), ("a",)), (("b",), ("a", "b")), (("a",), ("a", "b"))}
    assert len(_two_value_add_steps()) == 4


def test_invariants_are_cached_per_folder_and_digest(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    kb = _kb_with(tmp_path / "a", {"invariants": [_inv()]})
    first = load_invariants(kb)
    assert load_invariants(kb) is first
    (tmp_path / "a" / "invariants.yaml").write_text(json.dumps({"invariants": []}))
    assert load_invariants(kb) is first  # the same folder and digest: not read again
    assert load_invariants(dataclasses.replace(kb, digest="other")).invariants == ()


LOAD_ERRORS = [
    ({"invariants": [_inv(sources=[{"source": "nowhere", "locator": "x"}])]}, "INV-ONE", "sources.0", "unknown source 'nowhere'"),
    (
        {"invariants": [_inv(sources=[SOURCES[0], {"source": "article", "locator": "ZZ9"}])]},
        "INV-ONE",
        "sources.1",
        f"'ZZ9' is not a proposition of 'article'; valid: {', '.join(KB.sources['article'].propositions)}",
    ),
    ({"invariants": [_inv(), _inv()]}, "INV-ONE", "id", "duplicate invariant id"),
    ({"invariants": [_inv(id="INV-ESC")], "escalations": [_esc()]}, "INV-ESC", "id", "duplicate invariant id"),
    ({"invariants": [_inv(when={"colour": "red"})]}, "INV-ONE", "when.colour", "unknown field 'colour'"),
    ({"invariants": [_inv(must={"hold": {"depth": "shallow"}})]}, "INV-ONE", "must.hold.depth", "'shallow' is not a value of depth"),
    (
        {"invariants": [_inv(must={"ratings": {"fluoroscopy": {}}})]},
        "INV-ONE",
        "must.ratings.fluoroscopy",
        "a rating bound needs at_least or at_most",
    ),
    (
        {"invariants": [_inv(must={"notes": ["DOC-LANDMARK-BASIS", "RATE-US-FIT"]})]},
        "INV-ONE",
        "must.notes",
        "'RATE-US-FIT' is not an active documentation, caution or question rule",
    ),
    ({"invariants": [_inv(must={})]}, "INV-ONE", "must", "'must' must require something: hold, ratings or notes"),
    ({"invariants": [_inv(must={"hold": {}})]}, "INV-ONE", "must", "'must' must require something: hold, ratings or notes"),
    ({"escalations": [_esc(field="colour")]}, "INV-ESC", "field", "unknown case field 'colour'; valid: region, depth, tissue,"),
    ({"escalations": [_esc(steps="add")]}, "INV-ESC", "steps", "'add' is for list fields; give [from, to] pairs for depth"),
    ({"escalations": [_esc(field="anatomy_variance")]}, "INV-ESC", "steps", "anatomy_variance is a list field: use steps: add"),
    (
        {"escalations": [_esc(steps=[["superficial", "shallow"]])]},
        "INV-ESC",
        "steps",
        "'shallow' is not a value of depth; valid: superficial, intermediate, deep",
    ),
    (
        {"escalations": [_esc(field="palpable", steps=[[False, 1]])]},
        "INV-ESC",
        "steps",
        "'1' is not a value of palpable; valid: false, true",
    ),
    ({"escalations": [_esc(sources=[{"source": "nowhere", "locator": "x"}])]}, "INV-ESC", "sources.0", "unknown source 'nowhere'"),
]


WHOLE = {"duplicate invariant id", "a rating bound needs at_least or at_most", "'must' must require something: hold, ratings or notes"}


@pytest.mark.parametrize(("data", "rule", "key", "said"), LOAD_ERRORS)
def test_a_bad_invariant_file_names_the_invariant_and_key(tmp_path: Path, data: dict[str, Any], rule: str, key: str, said: str) -> None:
    with pytest.raises(RuleFileError) as caught:
        load_invariants(_kb_with(tmp_path, data))
    assert (caught.value.file, caught.value.rule, caught.value.key) == ("invariants.yaml", rule, key)
    where = f"invariants.yaml, rule {rule}, key '{key}': "
    assert str(caught.value).startswith(where + said)  # the message from its first word (the whole of it where `said` is whole)
    if said in WHOLE:
        assert str(caught.value) == where + said


def test_a_schema_error_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(RuleFileError, match=r"^invariants\.yaml"):
        load_invariants(_kb_with(tmp_path, {"invariants": [_inv(id="not-an-id")]}))


# ---- checking evaluated cases ----------------------------------------------------------


def _evaluation(case: dict[str, Any]) -> Evaluation:
    return REC.evaluate(REC.resolve(case).values)


def test_answer_of_keeps_values_categories_and_every_fired_rule() -> None:
    ev = _evaluation(KNEE)
    answer = answer_of(ev)
    assert answer.values is ev.values
    assert answer.ratings == {m: r.category for m, r in ev.ratings.items()} and set(answer.ratings) == set(Modality)
    assert answer.fired == frozenset(ev.fired) and any(r.id in answer.fired for r in ev.outputs)


def test_weight_counts_list_items_and_true_flags() -> None:
    assert weight({"site": "knee", "palpable": False, "depth": "deep"}) == 0
    assert weight({"palpable": True, "precise_plane": True, "anatomy_variance": ("effusion", "obesity"), "x": ["a"]}) == 5
    assert weight({"n": 1}) == 0  # only True itself counts


def _fake_evaluation(values: dict[str, Any], ratings: dict[Modality, Category] = RATINGS) -> Evaluation:
    results = {m: RatingResult(c, ("R",)) for m, c in ratings.items()}
    return Evaluation(values, [], results, US, [])


def test_a_breach_counts_every_case_and_keeps_the_smallest() -> None:
    heavy = {"palpable": True, "anatomy_variance": ("a", "b")}  # weight 3
    light = {"palpable": True}  # weight 1
    problem = "required palpable is false, but palpable is true"
    breach = Breach()
    for index, case in ((9, heavy), (7, light), (8, heavy), (3, heavy), (5, light)):
        breach.add((weight(case), index), case, problem)
    assert breach.count == 5 and KEEP == 3
    assert breach.smallest == [((1, 5), light, problem), ((1, 7), light, problem), ((3, 3), heavy, problem)]
    other = Breach()
    other.add((0, 99), {}, "q")
    breach.merge(other)
    assert breach.count == 6 and [key for key, _, _ in breach.smallest] == [(0, 99), (1, 5), (1, 7)]


def test_the_set_goes_on_after_an_invariant_that_holds() -> None:
    holds = invariant("INV-HOLDS", hold=(cond("depth", "deep"),))
    breached = invariant("INV-BREACHED", hold=(cond("palpable", False),))
    found = list(InvariantSet((holds, breached), ()).breaches(answer_of(_fake_evaluation({"depth": "deep", "palpable": True}))))
    assert [(inv.id, problem) for inv, problem in found] == [("INV-BREACHED", "required palpable is false, but palpable is true")]


def test_minimal_case_leaves_out_what_resolution_would_fill_alike() -> None:
    # palpable and bone_obscures_path are the knee's own values, contrast_confirmation the field default
    case = {**KNEE, "palpable": True, "bone_obscures_path": False, "contrast_confirmation": False, "near_neurovascular": True}
    assert minimal_case(KB, case) == {**KNEE, "near_neurovascular": True}
    variances = {**KNEE, "anatomy_variance": ("effusion",)}
    assert minimal_case(KB, variances) == {**KNEE, "anatomy_variance": ["effusion"]}  # as JSON: a list
    assert minimal_case(KB, {**KNEE, "anatomy_variance": ()}) == KNEE
    # a case without a site: region, depth and tissue are required (leaving one out is no case)
    free = {"region": "peripheral", "depth": "deep", "tissue": "joint", "injectate": "prp", "target_size": "small"}
    assert minimal_case(KB, free) == {"region": "peripheral", "depth": "deep", "tissue": "joint", "injectate": "prp"}


def test_minimal_case_keeps_site_and_injectate_even_at_their_defaults() -> None:
    assert list(minimal_case(KB, {"site": "knee", "injectate": "corticosteroid"})) == ["site", "injectate"]


class _Holder:
    """What invariant_findings needs of a recommender: its knowledge base."""

    knowledge = KB


def _result(name: str, breaches: dict[str, Any], covered: dict[str, int]) -> SpaceResult:
    return SpaceResult(name, 10, breaches=breaches, covered=Counter(covered))


def test_invariant_findings_sum_over_spaces_and_show_the_smallest_case() -> None:
    broken = invariant("INV-BROKEN")
    vacuous = invariant("INV-VACUOUS")
    holds = invariant("INV-HOLDS")
    invariants = InvariantSet((broken, vacuous, holds), ())
    near = {**KNEE, "near_neurovascular": True, "palpable": True}
    both = {**KNEE, "near_neurovascular": True, "contrast_confirmation": True}
    results = [
        _result("a", {"INV-BROKEN": Breach(2, [((2, 4), both, "second problem")])}, {"INV-BROKEN": 30, "INV-HOLDS": 3}),
        _result("b", {"INV-BROKEN": Breach(5, [((1, 9), near, "first problem"), ((2, 0), both, "x")])}, {"INV-BROKEN": 12}),
    ]
    found = invariant_findings(_Holder(), invariants, results, quick=False)  # type: ignore[arg-type]
    assert found == [
        Finding(
            "error",
            "invariant",
            "INV-BROKEN fails on 7 of 42 cases it covers: INV-BROKEN statement. Here first problem. The smallest counterexample is shown.",
            {**KNEE, "near_neurovascular": True},
        ),
        Finding("warning", "invariant-vacuous", "INV-VACUOUS covers no case in the enumerated spaces"),
    ]
    assert [f.check for f in invariant_findings(_Holder(), invariants, results, quick=True)] == ["invariant"]  # type: ignore[arg-type]
    assert invariant_findings(_Holder(), invariants, [], quick=False)[0].check == "invariant-vacuous"  # type: ignore[arg-type]


def test_spaces_without_the_breach_and_equal_keys_in_two_spaces() -> None:
    """Two spaces may hold a counterexample at the same index with the same weight: the first
    space's is shown (cases themselves are never compared)."""
    first = {**KNEE, "near_neurovascular": True}
    second = {**KNEE, "contrast_confirmation": True}
    results = [
        _result("none", {}, {"INV-T": 4}),
        _result("a", {"INV-T": Breach(1, [((1, 4), first, "p")])}, {"INV-T": 1}),
        _result("b", {"INV-T": Breach(1, [((1, 4), second, "q")])}, {"INV-T": 1}),
    ]
    [finding] = invariant_findings(_Holder(), InvariantSet((invariant(),), ()), results, quick=False)  # type: ignore[arg-type]
    assert finding.message.startswith("INV-T fails on 2 of 6 cases") and "Here p." in finding.message and finding.case == first


def test_large_counts_are_written_with_thousands_separators() -> None:
    results = [_result("a", {"INV-T": Breach(1234, [((0, 0), KNEE, "p")])}, {"INV-T": 56789})]
    [finding] = invariant_findings(_Holder(), InvariantSet((invariant(),), ()), results, quick=False)  # type: ignore[arg-type]
    assert finding.message.startswith("INV-T fails on 1,234 of 56,789 cases")


# ---- the invariants' own examples ------------------------------------------------------

KNEE_LANDMARK = cond("site", "knee")


def test_examples_that_fit_give_no_finding() -> None:
    good = invariant(tests=(KNEE_LANDMARK,), hold=(cond("modality", "landmark"),), covers=(KNEE,), outside=(HIP,))
    flag = escalation("INV-E", "near_neurovascular", ((False, True),), covers=[KNEE], outside=[{**KNEE, "near_neurovascular": True}])
    assert invariant_example_findings(REC, InvariantSet((good,), (flag,))) == []


def test_each_misfit_example_is_a_finding() -> None:
    inv = invariant(
        "INV-X",
        tests=(KNEE_LANDMARK,),
        hold=(cond("modality", "ultrasound"),),
        covers=({"site": "kne", "injectate": "prp"}, HIP, KNEE),  # a failing example first: the rest are still checked
        outside=(KNEE, HIP),
    )
    esc = escalation(
        "INV-E",
        "near_neurovascular",
        ((False, True),),
        covers=[{"site": "nowhere", "injectate": "prp"}, {**KNEE, "near_neurovascular": True}],
        outside=[KNEE],
    )
    found = invariant_example_findings(REC, InvariantSet((inv,), (esc,)))
    assert [(f.level, f.check, f.case) for f in found] == [
        ("error", "invariant-example", {"site": "kne", "injectate": "prp"}),
        ("error", "invariant-example", HIP),
        ("error", "invariant", KNEE),
        ("error", "invariant-example", KNEE),
        ("error", "invariant-example", {"site": "nowhere", "injectate": "prp"}),
        ("error", "invariant-example", {**KNEE, "near_neurovascular": True}),
        ("error", "invariant-example", KNEE),
    ]
    messages = [f.message for f in found]
    assert messages[0].startswith("INV-X: example {'site': 'kne', 'injectate': 'prp'} fails: ") and "kne" in messages[0][40:]
    assert messages[1] == "INV-X does not cover its own 'covers' example"
    assert messages[2] == "INV-X fails on its own example: required modality is ultrasound, but modality is landmark"
    assert messages[3] == "INV-X covers its own 'outside' example"
    assert messages[4].startswith("INV-E: example {'site': 'nowhere', 'injectate': 'prp'} fails: ") and "nowhere" in messages[4][50:]
    assert messages[5] == "INV-E does not cover its own 'covers' example"
    assert messages[6] == "INV-E covers its own 'outside' example"
