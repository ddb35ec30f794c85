"""The condition language of the rule files, and the vocabulary it may use.

A `when:` block is a mapping of field to test, all of which must hold:
  ``depth: deep``                 the field equals the value
  ``depth: [intermediate, deep]`` the field is one of the values
  ``tissue: {not: [joint]}``      the field is none of the values
For list fields (``anatomy_variance``, ``available_modalities``) a value or list means
"includes any of", and ``{not: [...]}`` means "includes none of". Derived facts are booleans.
There is no "or": two rules with the same conclusion express it, each with its own reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from guidance_rules.errors import CaseError
from guidance_rules.model import Approach, Depth, Imaging, Injectate, Modality, Region, TargetSize, Tissue, Variance

BOOL: tuple[bool, ...] = (False, True)


@dataclass(frozen=True)
class FieldSpec:
    """A field a condition may test, with every value it can take."""

    name: str
    values: tuple[Any, ...]
    is_list: bool = False


def _enum(name: str, enum: type[StrEnum], is_list: bool = False) -> FieldSpec:
    return FieldSpec(name, tuple(member.value for member in enum), is_list)


# The case fields as resolved (every one has a value once defaults are filled in).
CASE_FIELDS: dict[str, FieldSpec] = {
    spec.name: spec
    for spec in (
        _enum("region", Region),
        _enum("depth", Depth),
        _enum("tissue", Tissue),
        _enum("target_size", TargetSize),
        FieldSpec("palpable", BOOL),
        _enum("injectate", Injectate),
        _enum("anatomy_variance", Variance, is_list=True),
        FieldSpec("near_neurovascular", BOOL),
        FieldSpec("precise_plane", BOOL),
        FieldSpec("compartment_specific", BOOL),
        FieldSpec("bone_obscures_path", BOOL),
        FieldSpec("contrast_confirmation", BOOL),
        _enum("available_modalities", Imaging, is_list=True),
        _enum("approach", Approach),
    )
}
EQUIPMENT_FIELD = "available_modalities"
BOOL_FIELDS = tuple(name for name, spec in CASE_FIELDS.items() if spec.values == BOOL)  # the case's true/false flags
MODALITY_FIELD = FieldSpec("modality", tuple(m.value for m in Modality))
_ALLOWED = {name: frozenset(spec.values) for name, spec in CASE_FIELDS.items() if spec.values != BOOL}
_LISTS = frozenset(name for name, spec in CASE_FIELDS.items() if spec.is_list)


def check_resolved(values: Mapping[str, Any]) -> None:
    """Raise CaseError naming the first field whose value the rules cannot test.

    The engine compares values by JSON equality: a string 'true' or a 1 where a rule tests a
    flag, or a value outside the vocabulary, would match no rule and answer as if it were
    another value. Resolved values from `resolve` always pass; this guards callers that build
    them by hand."""
    for name in BOOL_FIELDS:
        value = values.get(name)
        if value is not True and value is not False:
            raise CaseError((name,), f"{name}: {value!r} is not a resolved value; valid: True, False", kind="value")
    for name, allowed in _ALLOWED.items():
        value = values.get(name)
        if name in _LISTS:
            ok = isinstance(value, (tuple, list)) and all(isinstance(v, str) and v in allowed for v in value)
        else:
            ok = isinstance(value, str) and value in allowed
        if not ok:
            shown = f"a list of {', '.join(sorted(allowed))}" if name in _LISTS else ", ".join(sorted(allowed))
            raise CaseError((name,), f"{name}: {value!r} is not a resolved value; valid: {shown}", kind="value")


@dataclass(frozen=True)
class Test:
    """One test of a condition: the field's value is (or, negated, is not) among `values`."""

    field: str
    values: frozenset[Any]
    negated: bool = False
    is_list: bool = False

    def holds(self, facts: Mapping[str, Any]) -> bool:
        value = facts[self.field]
        hit = not self.values.isdisjoint(value) if self.is_list else value in self.values
        return hit != self.negated

    def describe(self) -> str:
        shown = ", ".join(sorted(str(v).lower() if isinstance(v, bool) else str(v) for v in self.values))
        verb = ("includes none of" if self.negated else "includes any of") if self.is_list else ("is not" if self.negated else "is")
        return f"{self.field} {verb} {shown}"


def holds(tests: Iterable[Test], facts: Mapping[str, Any]) -> bool:
    """True when every test holds for these (fully resolved) facts. (`Test.holds`, inlined: the
    audit calls this for every constraint and invariant on every case of the space.)"""
    for test in tests:
        value = facts[test.field]
        hit = not test.values.isdisjoint(value) if test.is_list else value in test.values
        if hit == test.negated:
            return False
    return True


def parse(when: Any, vocabulary: Mapping[str, FieldSpec]) -> tuple[Test, ...]:
    """Turn a `when:` mapping into tests; raise ValueError naming the key and the valid choices."""
    if when is None:
        return ()
    if not isinstance(when, Mapping):
        raise ValueError("'when' must be a mapping of field to value, list of values, or {not: [...]}")
    tests = []
    for field, raw in when.items():
        spec = vocabulary.get(field)
        if spec is None:
            raise KeyError(field, f"unknown field '{field}'; valid fields: {', '.join(sorted(vocabulary))}")
        negated = False
        if isinstance(raw, Mapping):
            if set(raw) != {"not"}:
                raise KeyError(field, f"a mapping test takes only the key 'not', got {sorted(raw)}")
            negated, raw = True, raw["not"]
        values = list(raw) if isinstance(raw, list) else [raw]
        if not values:
            raise KeyError(field, "an empty list of values can never hold")
        for value in values:
            if not any(value == allowed and type(value) is type(allowed) for allowed in spec.values):
                shown = ", ".join(str(v).lower() if isinstance(v, bool) else str(v) for v in spec.values)
                raise KeyError(field, f"'{value}' is not a value of {field}; valid values: {shown}")
        tests.append(Test(field, frozenset(values), negated, spec.is_list))
    return tuple(tests)
