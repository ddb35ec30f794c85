"""The condition language at its own layer (mutation testing found it checked only through whole
rule bases): what each form of test means, how a test describes itself, how `when:` is parsed
(and refused, naming the field and the valid values), and the guard on hand-built resolved values."""

from __future__ import annotations

from typing import Any

import pytest

from guidance_rules.errors import CaseError
from guidance_rules.rulebase.conditions import (
    BOOL,
    BOOL_FIELDS,
    CASE_FIELDS,
    EQUIPMENT_FIELD,
    MODALITY_FIELD,
    FieldSpec,
    check_resolved,
    holds,
    parse,
)
from guidance_rules.rulebase.conditions import (
    Test as Check,
)
from guidance_rules.rulebase.domain import KnowledgeBase
from guidance_rules.rulebase.resolve import resolve

VOCABULARY = {
    "depth": CASE_FIELDS["depth"],
    "palpable": CASE_FIELDS["palpable"],
    "anatomy_variance": CASE_FIELDS["anatomy_variance"],
}


# -- the vocabulary ----------------------------------------------------------------------------------


def test_the_vocabulary_is_the_case_model_with_lists_and_flags_marked() -> None:
    assert CASE_FIELDS["depth"] == FieldSpec("depth", ("superficial", "intermediate", "deep"), False)
    assert CASE_FIELDS["anatomy_variance"].is_list and CASE_FIELDS[EQUIPMENT_FIELD].is_list
    assert [name for name, spec in CASE_FIELDS.items() if spec.is_list] == ["anatomy_variance", "available_modalities"]
    assert BOOL_FIELDS == (
        "palpable",
        "near_neurovascular",
        "precise_plane",
        "compartment_specific",
        "bone_obscures_path",
        "contrast_confirmation",
    )
    assert BOOL == (False, True)
    assert all(CASE_FIELDS[name].values == BOOL for name in BOOL_FIELDS)
    assert FieldSpec("modality", ("ultrasound", "fluoroscopy", "both", "landmark")) == MODALITY_FIELD


# -- check_resolved ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def resolved(knowledge: KnowledgeBase) -> dict[str, Any]:
    return dict(resolve({"site": "knee", "injectate": "prp", "anatomy_variance": ["obesity"]}, knowledge).values)


def rejected(values: dict[str, Any]) -> CaseError:
    with pytest.raises(CaseError) as caught:
        check_resolved(values)
    assert caught.value.kind == "value"
    return caught.value


def test_resolved_values_pass_with_lists_or_tuples(resolved: dict[str, Any]) -> None:
    check_resolved(resolved)
    check_resolved({**resolved, "anatomy_variance": ["obesity", "effusion"], "available_modalities": []})
    check_resolved({**resolved, "anatomy_variance": ("obesity",), "available_modalities": ("ultrasound", "fluoroscopy")})


@pytest.mark.parametrize("name", BOOL_FIELDS)
@pytest.mark.parametrize("value", ["true", 1, 0, None])
def test_a_flag_must_be_true_or_false_itself(resolved: dict[str, Any], name: str, value: Any) -> None:
    error = rejected({**resolved, name: value})
    assert error.fields == (name,)
    assert str(error) == f"{name}: {value!r} is not a resolved value; valid: True, False"


def test_a_missing_flag_is_refused(resolved: dict[str, Any]) -> None:
    values = {k: v for k, v in resolved.items() if k != "palpable"}
    assert str(rejected(values)) == "palpable: None is not a resolved value; valid: True, False"


def test_flags_are_checked_before_the_other_fields(resolved: dict[str, Any]) -> None:
    assert rejected({**resolved, "depth": "shallow", "palpable": "no"}).fields == ("palpable",)


@pytest.mark.parametrize("value", ["shallow", "Deep", None, 3, ["deep"]])
def test_a_scalar_field_must_be_one_of_its_values(resolved: dict[str, Any], value: Any) -> None:
    error = rejected({**resolved, "depth": value})
    assert error.fields == ("depth",)
    assert str(error) == f"depth: {value!r} is not a resolved value; valid: deep, intermediate, superficial"


@pytest.mark.parametrize("value", ["obesity", ["obese"], ("obesity", 1), None, {"obesity"}])
def test_a_list_field_must_be_a_list_of_its_values(resolved: dict[str, Any], value: Any) -> None:
    error = rejected({**resolved, "anatomy_variance": value})
    assert error.fields == ("anatomy_variance",)
    assert str(error) == (
        f"anatomy_variance: {value!r} is not a resolved value; valid: a list of atypical_anatomy, effusion, obesity, prior_surgery"
    )


def test_every_enumerated_field_is_checked(resolved: dict[str, Any]) -> None:
    for name, spec in CASE_FIELDS.items():
        if spec.values != BOOL:
            assert rejected({**resolved, name: "zzz"}).fields == (name,)


# -- Test and holds --------------------------------------------------------------------------------

SCALAR = Check("depth", frozenset({"deep", "intermediate"}))
NOT_SCALAR = Check("depth", frozenset({"deep", "intermediate"}), negated=True)
ANY_OF = Check("anatomy_variance", frozenset({"obesity", "effusion"}), is_list=True)
NONE_OF = Check("anatomy_variance", frozenset({"obesity", "effusion"}), negated=True, is_list=True)

# (depth, anatomy_variance) -> whether each of SCALAR, NOT_SCALAR, ANY_OF, NONE_OF holds
MEANING = [
    ("deep", (), (True, False, False, True)),
    ("intermediate", ("obesity",), (True, False, True, False)),
    ("superficial", ("prior_surgery", "effusion"), (False, True, True, False)),
    ("superficial", ("prior_surgery",), (False, True, False, True)),
]


@pytest.mark.parametrize(("depth", "variance", "expected"), MEANING)
def test_each_form_of_test_means_what_the_language_says(depth: str, variance: tuple[str, ...], expected: tuple[bool, ...]) -> None:
    facts = {"depth": depth, "anatomy_variance": variance}
    tests = (SCALAR, NOT_SCALAR, ANY_OF, NONE_OF)
    assert tuple(test.holds(facts) for test in tests) == expected
    assert tuple(holds([test], facts) for test in tests) == expected  # the inlined copy agrees


def test_holds_needs_every_test() -> None:
    facts = {"depth": "deep", "anatomy_variance": ("obesity",)}
    assert holds([], facts) is True
    assert holds([SCALAR, ANY_OF], facts) is True
    assert holds([SCALAR, NONE_OF], facts) is False
    assert holds([NONE_OF, SCALAR], facts) is False
    assert holds([NOT_SCALAR, ANY_OF], facts) is False


def test_a_flag_test_compares_booleans() -> None:
    palpable = Check("palpable", frozenset({True}))
    assert palpable.holds({"palpable": True}) and not palpable.holds({"palpable": False})
    assert holds([palpable], {"palpable": True}) and not holds([palpable], {"palpable": False})


@pytest.mark.parametrize(
    ("test", "text"),
    [
        (SCALAR, "depth is deep, intermediate"),
        (NOT_SCALAR, "depth is not deep, intermediate"),
        (ANY_OF, "anatomy_variance includes any of effusion, obesity"),
        (NONE_OF, "anatomy_variance includes none of effusion, obesity"),
        (Check("palpable", frozenset({True})), "palpable is true"),
        (Check("palpable", frozenset({False, True}), negated=True), "palpable is not false, true"),
        (Check("site", frozenset({"Knee"})), "site is Knee"),
    ],
)
def test_a_test_describes_itself_in_words(test: Check, text: str) -> None:
    assert test.describe() == text


# -- parse -------------------------------------------------------------------------------------------


def test_parse_builds_one_test_per_field() -> None:
    tests = parse({"depth": "deep", "palpable": False, "anatomy_variance": {"not": ["obesity", "effusion"]}}, VOCABULARY)
    assert tests == (
        Check("depth", frozenset({"deep"}), False, False),
        Check("palpable", frozenset({False}), False, False),
        Check("anatomy_variance", frozenset({"obesity", "effusion"}), True, True),
    )
    assert parse({"depth": ["deep", "intermediate"]}, VOCABULARY) == (Check("depth", frozenset({"deep", "intermediate"})),)
    assert parse({"anatomy_variance": "obesity"}, VOCABULARY) == (Check("anatomy_variance", frozenset({"obesity"}), False, True),)
    assert parse({"depth": {"not": "deep"}}, VOCABULARY) == (Check("depth", frozenset({"deep"}), True, False),)


def test_no_condition_always_holds() -> None:
    assert parse(None, VOCABULARY) == ()
    assert parse({}, VOCABULARY) == ()


@pytest.mark.parametrize("when", [["depth", "deep"], "depth: deep", 3])
def test_a_condition_must_be_a_mapping(when: Any) -> None:
    with pytest.raises(ValueError) as caught:
        parse(when, VOCABULARY)
    assert str(caught.value) == "'when' must be a mapping of field to value, list of values, or {not: [...]}"


def refusal(when: Any) -> tuple[str, str]:
    with pytest.raises(KeyError) as caught:
        parse(when, VOCABULARY)
    field, message = caught.value.args
    return field, message


def test_an_unknown_field_is_named_with_the_valid_ones() -> None:
    assert refusal({"depth": "deep", "size": "small"}) == ("size", "unknown field 'size'; valid fields: anatomy_variance, depth, palpable")


@pytest.mark.parametrize("raw", [{"nor": ["deep"]}, {"not": ["deep"], "also": ["deep"]}, {}])
def test_a_mapping_test_takes_only_not(raw: dict[str, Any]) -> None:
    assert refusal({"depth": raw}) == ("depth", f"a mapping test takes only the key 'not', got {sorted(raw)}")


@pytest.mark.parametrize("when", [{"depth": []}, {"depth": {"not": []}}])
def test_an_empty_list_is_refused(when: dict[str, Any]) -> None:
    assert refusal(when) == ("depth", "an empty list of values can never hold")


def test_a_value_outside_the_vocabulary_is_named_with_the_valid_ones() -> None:
    assert refusal({"depth": ["deep", "medium"]}) == (
        "depth",
        "'medium' is not a value of depth; valid values: superficial, intermediate, deep",
    )


@pytest.mark.parametrize("value", ["true", 1, 0, None])
def test_a_flag_takes_only_true_or_false(value: Any) -> None:
    assert refusal({"palpable": value}) == ("palpable", f"'{value}' is not a value of palpable; valid values: false, true")


def test_a_word_field_does_not_take_a_flag() -> None:
    spec = FieldSpec("mixed", ("1", "Yes"))
    with pytest.raises(KeyError) as caught:
        parse({"mixed": 1}, {"mixed": spec})
    assert caught.value.args == ("mixed", "'1' is not a value of mixed; valid values: 1, Yes")  # only flags are lower-cased
    assert parse({"mixed": "1"}, {"mixed": spec}) == (Check("mixed", frozenset({"1"})),)
