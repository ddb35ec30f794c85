"""The finite case spaces at their own layer: a case is a number and back (mixed radix, the last field
fastest), chunks cover every index exactly once, merged spaces keep both rule bases' values, and the
audited spaces hold exactly the fields and values they promise."""

from __future__ import annotations

import dataclasses
import itertools
import math

import pytest

from guidance_rules.rulebase.conditions import BOOL_FIELDS, CASE_FIELDS
from guidance_rules.rulebase.domain import KnowledgeBase
from guidance_rules.rulebase.space import (
    BUILDERS,
    EQUIPMENT_SETS,
    FREE_FIELDS,
    VARIANCE_SETS,
    Space,
    approach_space,
    as_json_case,
    audit_spaces,
    free_space,
    site_space,
    space_named,
    space_names,
)

SMALL = Space("small", ("a", "b", "c"), ((1, 2, 3), ("x", "y"), (True, False)))


def test_a_space_counts_every_combination() -> None:
    assert SMALL.size == 12
    assert SMALL.strides == (4, 2, 1)
    assert Space("empty", ("a", "b"), ((1, 2), ())).size == 0


def test_index_zero_is_the_first_value_of_every_field_and_the_last_field_turns_fastest() -> None:
    assert SMALL.case(0) == {"a": 1, "b": "x", "c": True}
    assert SMALL.case(1) == {"a": 1, "b": "x", "c": False}
    assert SMALL.case(2) == {"a": 1, "b": "y", "c": True}
    assert SMALL.case(4) == {"a": 2, "b": "x", "c": True}
    assert SMALL.case(11) == {"a": 3, "b": "y", "c": False}
    assert SMALL.digits(7) == [1, 1, 1]
    assert SMALL.digits(9) == [2, 0, 1]


def test_a_case_and_its_index_round_trip_over_the_whole_space() -> None:
    cases = [SMALL.case(i) for i in range(SMALL.size)]
    assert len({tuple(c.values()) for c in cases}) == SMALL.size  # every combination once
    assert [SMALL.index(c) for c in cases] == list(range(SMALL.size))


@pytest.mark.parametrize(
    ("size", "count", "expected"),
    [(10, 3, [(0, 4), (4, 8), (8, 10)]), (10, 1, [(0, 10)]), (12, 4, [(0, 3), (3, 6), (6, 9), (9, 12)]), (3, 5, [(0, 1), (1, 2), (2, 3)])],
)
def test_chunks_cover_every_index_once_in_order(size: int, count: int, expected: list[tuple[int, int]]) -> None:
    space = Space("line", ("n",), (tuple(range(size)),))
    assert list(space.chunks(count)) == expected


def test_chunks_of_a_real_space_cover_it_exactly(knowledge: KnowledgeBase) -> None:
    space = site_space(knowledge, ["knee", "hip", "a1_pulley"])
    for count in (1, 2, 7, 64):
        chunks = list(space.chunks(count))
        assert len(chunks) <= count
        assert chunks[0][0] == 0 and chunks[-1][1] == space.size
        assert all(end == start for (_, end), (start, _) in itertools.pairwise(chunks))


@pytest.mark.parametrize("bad", [Space("bad", ("a", "b"), ((1, 2),)), Space("bad", ("a",), ((1, 2), ("x",)))])
def test_a_space_whose_fields_and_choices_disagree_is_an_error_not_a_truncated_case(bad: Space) -> None:
    with pytest.raises(ValueError):
        bad.case(0)
    with pytest.raises(ValueError):
        bad.index({"a": 1, "b": "x"})
    with pytest.raises(ValueError):
        Space("bad", ("a", "b"), ((1,), ("x",))).merged(Space("bad", ("a", "b"), ((1,),)))


def test_merged_spaces_keep_each_fields_values_from_both_this_ones_first() -> None:
    other = Space("small", ("a", "b", "c"), ((3, 4), ("y", "z"), (False,)))
    merged = SMALL.merged(other)
    assert merged == Space("small", ("a", "b", "c"), ((1, 2, 3, 4), ("x", "y", "z"), (True, False)))
    assert other.merged(SMALL).choices[0] == (3, 4, 1, 2)


@pytest.mark.parametrize("other", [Space("other", ("a", "b", "c"), SMALL.choices), Space("small", ("a", "b"), SMALL.choices[:2])])
def test_only_versions_of_one_space_merge(other: Space) -> None:
    with pytest.raises(ValueError) as caught:
        SMALL.merged(other)
    assert str(caught.value) == f"cannot merge space {other.name} {other.fields} into small ('a', 'b', 'c')"


def test_variance_and_equipment_sets_are_every_subset_smallest_first() -> None:
    variances = CASE_FIELDS["anatomy_variance"].values
    assert len(VARIANCE_SETS) == 2 ** len(variances) == len(set(VARIANCE_SETS))
    assert VARIANCE_SETS[0] == () and VARIANCE_SETS[-1] == tuple(sorted(variances))
    assert all(list(s) == sorted(s) for s in VARIANCE_SETS)
    assert [len(s) for s in VARIANCE_SETS] == sorted(len(s) for s in VARIANCE_SETS)
    assert EQUIPMENT_SETS == ((), ("ultrasound",), ("fluoroscopy",), ("fluoroscopy", "ultrasound"))


def test_the_free_space_is_every_enumerated_field_without_a_site() -> None:
    space = free_space()
    assert space.name == "free" and space.fields == FREE_FIELDS
    for name, values in zip(space.fields, space.choices, strict=True):
        assert values == (VARIANCE_SETS if name == "anatomy_variance" else CASE_FIELDS[name].values), name
    assert space.size == 589_824


def test_the_site_space_is_every_site_injectate_variance_set_and_flag(knowledge: KnowledgeBase) -> None:
    space = site_space(knowledge)
    assert space.name == "sites"
    assert space.fields == ("site", "injectate", "anatomy_variance", *BOOL_FIELDS)
    assert space.choices[:3] == (tuple(knowledge.sites), CASE_FIELDS["injectate"].values, VARIANCE_SETS)
    assert space.choices[3:] == tuple((False, True) for _ in BOOL_FIELDS)
    assert space.size == len(knowledge.sites) * 6 * 16 * 2 ** len(BOOL_FIELDS)


def test_a_site_filter_keeps_known_sites_in_the_order_given(knowledge: KnowledgeBase) -> None:
    assert site_space(knowledge, ["hip", "nowhere", "knee"]).choices[0] == ("hip", "knee")
    assert site_space(knowledge, []).size == 0


def test_the_approach_space_holds_the_sites_that_accept_an_approach(knowledge: KnowledgeBase) -> None:
    space = approach_space(knowledge)
    assert space.name == "approach"
    assert space.fields == ("site", "approach", "injectate", "anatomy_variance", *BOOL_FIELDS)
    assert space.choices[0] == ("knee",)  # constraints.yaml: an approach is a path into the knee joint
    assert space.choices[1] == CASE_FIELDS["approach"].values
    assert space.choices[2:4] == (CASE_FIELDS["injectate"].values, VARIANCE_SETS)
    assert space.choices[4:] == tuple((False, True) for _ in BOOL_FIELDS)
    assert approach_space(knowledge, ["hip", "knee"]).choices[0] == ("knee",)
    assert approach_space(knowledge, ["hip"]).size == 0


def test_which_sites_accept_an_approach_is_the_rule_bases_decision(knowledge: KnowledgeBase) -> None:
    """Without the constraints every site accepts one."""
    free = dataclasses.replace(knowledge, constraints=())
    assert approach_space(free).choices[0] == tuple(knowledge.sites)


def test_a_space_point_reads_as_case_json() -> None:
    assert as_json_case({"site": "knee", "anatomy_variance": ("obesity",), "palpable": True, "depth": None}) == {
        "site": "knee",
        "anatomy_variance": ["obesity"],
        "palpable": True,
        "depth": None,
    }


def test_the_audited_spaces_in_order_quick_leaves_out_the_free_space(knowledge: KnowledgeBase) -> None:
    assert space_names() == ("free", "sites", "approach") == tuple(BUILDERS)
    assert space_names(quick=True) == ("sites", "approach")
    assert [s.name for s in audit_spaces(knowledge)] == ["free", "sites", "approach"]
    assert [s.name for s in audit_spaces(knowledge, quick=True)] == ["sites", "approach"]


def test_empty_spaces_are_left_out_and_a_site_filter_narrows_the_others(knowledge: KnowledgeBase) -> None:
    spaces = audit_spaces(knowledge, quick=True, sites=["hip"])
    assert [(s.name, s.choices[0]) for s in spaces] == [("sites", ("hip",))]
    spaces = audit_spaces(knowledge, quick=False, sites=["knee"])
    assert [s.name for s in spaces] == ["free", "sites", "approach"]
    assert spaces[0] == free_space()
    assert math.prod(len(c) for c in spaces[2].choices) == spaces[2].size > 0


def test_a_space_is_found_by_name_and_an_unknown_name_is_an_error(knowledge: KnowledgeBase) -> None:
    assert space_named("free", knowledge) == free_space()
    assert space_named("sites", knowledge, ["hip"]) == site_space(knowledge, ["hip"])
    assert space_named("approach", knowledge) == approach_space(knowledge)
    with pytest.raises(ValueError) as caught:
        space_named("site", knowledge)
    assert str(caught.value) == "no space named 'site'; spaces: free, sites, approach"
