"""Why a case is invalid (`guidance_rules.recommendation.problems`), message by message: each
names the field, what was given, and what is allowed, with the closest valid value for a near
miss. Written against the mutation run of issue 24: the hostile-input tests check that a field is
named; these check what is said."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from guidance_rules import Case, Recommender
from guidance_rules.recommendation.problems import allowed, problems_of, short, suggest, then
from guidance_rules.rulebase.load import default_knowledge

KB = default_knowledge()
FIELDS = ", ".join(Case.model_fields)
INJECTATES = "corticosteroid, local_anesthetic, hyaluronic_acid, prp, cell_based, other"
VARIANCES = ", ".join(allowed("anatomy_variance", KB))


def said(case: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as raised:
        Recommender().recommend(case)
    return problems_of(raised.value, KB)


def test_allowed_values_of_a_field() -> None:
    assert allowed("site", KB) == tuple(KB.sites) and "knee" in allowed("site", KB)
    assert allowed("palpable", KB) == ("false", "true")
    assert allowed("injectate", KB) == tuple(INJECTATES.split(", "))
    assert allowed("colour", KB) == ()


@pytest.mark.parametrize(
    ("value", "choices", "hint"),
    [
        ("kne", ("knee", "hip"), "; did you mean 'knee'?"),
        ("KNEE", ("knee", "hip"), "; did you mean 'knee'?"),  # matched without regard to case
        ("knee", ("knee", "hip"), ""),  # the value itself is no suggestion
        ("ab", ("ax",), "; did you mean 'ax'?"),  # half the letters alike: still close enough
        ("ab", ("xy",), ""),
        (3, ("3",), ""),
        ("kne", (), ""),
    ],
)
def test_a_near_miss_gets_the_closest_value(value: Any, choices: tuple[str, ...], hint: str) -> None:
    assert suggest(value, choices) == hint


def test_two_clauses_make_one_message() -> None:
    assert then("'x' is wrong", "give y") == "'x' is wrong; give y"
    assert then("did you mean 'y'?", "give y") == "did you mean 'y'? Give y"
    assert then("?", "") == "? "


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("knee", "'knee'"),
        (True, "true"),
        ([1, "a"], '[1, "a"]'),
        ("x" * 58, repr("x" * 58)),  # 60 characters with its quotes: shown whole
        ("x" * 59, repr("x" * 59)[:57] + "..."),
        (list(range(30)), "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16..."),
    ],
)
def test_a_given_value_is_shown_short(value: Any, text: str) -> None:
    assert short(value) == text and len(text) <= 60


def test_each_kind_of_problem_says_what_was_given_and_what_is_allowed() -> None:
    assert said({"site": "knee", "injectate": "prp", "colr": 1}) == [("colr", f"'colr' is not a case field; valid fields: {FIELDS}")]
    assert said({"site": "knee", "injectate": "prp", "palpabel": True}) == [
        ("palpabel", f"'palpabel' is not a case field; did you mean 'palpable'? Valid fields: {FIELDS}")
    ]
    assert said({"site": "knee"}) == [("injectate", f"required; allowed: {INJECTATES}")]
    assert said({"site": "knee", "injectate": "prpp"}) == [
        ("injectate", f"'prpp' was given, which is not allowed; allowed: {INJECTATES}; did you mean 'prp'?")
    ]
    assert said({"site": "knee", "injectate": "prp", "palpable": " True"}) == [
        ("palpable", "the text ' True' was given; a boolean is expected: true without quotes")
    ]
    assert said({"site": "knee", "injectate": "prp", "palpable": "yes"}) == [
        ("palpable", "'yes' was given, which is not allowed; allowed: false, true")
    ]
    assert said({"site": "knee", "injectate": "prp", "palpable": 2}) == [
        ("palpable", "2 was given, which is not allowed; allowed: false, true")
    ]
    assert said({"site": "knee", "injectate": "prp", "anatomy_variance": ["obesty"]}) == [
        ("anatomy_variance", f"'obesty' was given, which is not allowed; allowed items: {VARIANCES}; did you mean 'obesity'?")
    ]
    [(field, message)] = said({"site": "knee", "injectate": "prp", "anatomy_variance": "obesity"})
    assert field == "anatomy_variance" and message.startswith("Input should be a list; allowed items: ")
    [(field, message)] = said({"site": 5, "injectate": "prp"})
    assert (field, message) == ("site", f"Input should be a valid string; allowed: {', '.join(KB.sites)}")


def test_a_value_error_of_a_field_loses_pydantics_prefix() -> None:
    [(field, message)] = said({"site": "knee", "injectate": "prp", "anatomy_variance": ["obesity"] * 9})
    assert (field, message) == ("anatomy_variance", "9 items given; at most 8 are allowed")


def test_errors_against_the_rule_base_are_said_as_the_rule_base_says_them() -> None:
    [(field, message)] = said({"site": "nowhere", "injectate": "prp"})
    assert field == "site" and message.startswith("unknown site 'nowhere'; ")
    contradiction = said({"region": "spinal", "tissue": "tendon_sheath", "depth": "deep", "injectate": "prp"})
    assert [f for f, _ in contradiction] == ["region", "tissue"] and contradiction[0][1] == contradiction[1][1]
    assert contradiction[0][1].startswith("contradictory case (")
    [(field, message)] = said({"injectate": "prp", "depth": "deep", "tissue": "joint"})
    assert field == "region" and message.startswith("region is required when no site is given; one of: ")


def whole_case(message: str, kind: str = "value_error") -> ValidationError:
    """An error of the whole case (no field in its location), as a model-level check raises it."""
    details: list[InitErrorDetails] = [
        {"type": PydanticCustomError(kind, "{message}", {"message": message}), "loc": (), "input": {}}
        if kind != "value_error"
        else {"type": "value_error", "loc": (), "input": {}, "ctx": {"error": ValueError(message)}}
    ]
    return ValidationError.from_exception_data("Case", details)


@pytest.mark.parametrize(
    ("message", "field"),
    [
        ("depth must be given with region", "depth"),
        ("a contradictory case (tissue=joint, region=spinal)", "tissue"),
        ("nothing names a field here", "case"),
    ],
)
def test_an_error_of_the_whole_case_still_names_its_first_field(message: str, field: str) -> None:
    assert problems_of(whole_case(message), KB) == [(field, message)]


def test_an_error_of_another_kind_without_a_field_is_said_as_it_is() -> None:
    assert problems_of(whole_case("region (region=x) is odd", "odd_kind"), KB) == [("region", "region (region=x) is odd")]


def test_a_boolean_given_as_text_is_said_for_false_too() -> None:
    assert said({"site": "knee", "injectate": "prp", "palpable": "False "}) == [
        ("palpable", "the text 'False ' was given; a boolean is expected: false without quotes")
    ]


def test_an_error_at_a_field_no_message_here_knows_is_said_as_pydantic_says_it() -> None:
    details: list[InitErrorDetails] = [
        {"type": PydanticCustomError("odd_kind", "odd {what}", {"what": "thing"}), "loc": ("colour",), "input": 1}
    ]
    assert problems_of(ValidationError.from_exception_data("Case", details), KB) == [("colour", "odd thing")]
