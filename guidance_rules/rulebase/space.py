"""The finite space of cases, indexed so that a case is a number and back.

Three spaces are audited (`BUILDERS`, which the rule-change diff enumerates too):
* `free`: every combination of the enumerated fields without a site (589,824 before
  contradictions are removed), every field given explicitly;
* `sites`: every catalogue site with every injectate, every set of anatomy variances and
  every boolean flag given explicitly as true or false (the site fills in the rest).
* `approach`: the sites that accept a named approach, with every approach as well.
Equipment is left at its default: no rating rule may read it (checked at load time).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from guidance_rules.rulebase.conditions import BOOL_FIELDS, CASE_FIELDS
from guidance_rules.rulebase.domain import KnowledgeBase


def _subsets(values: Sequence[str]) -> tuple[tuple[str, ...], ...]:
    """Every subset of a list field's vocabulary, smallest first, each sorted."""
    return tuple(tuple(sorted(combo)) for size in range(len(values) + 1) for combo in itertools.combinations(values, size))


VARIANCES = CASE_FIELDS["anatomy_variance"].values
VARIANCE_SETS: tuple[tuple[str, ...], ...] = _subsets(VARIANCES)
# Every set of clinic equipment: the audit's equipment check and the rule diff vary it over these.
EQUIPMENT_SETS: tuple[tuple[str, ...], ...] = _subsets(CASE_FIELDS["available_modalities"].values)
FREE_FIELDS = (
    "region",
    "depth",
    "tissue",
    "target_size",
    "palpable",
    "injectate",
    "anatomy_variance",
    "near_neurovascular",
    "precise_plane",
    "compartment_specific",
    "bone_obscures_path",
    "contrast_confirmation",
)


@dataclass(frozen=True)
class Space:
    """A mixed-radix product of field values. Index 0 is the first value of every field."""

    name: str
    fields: tuple[str, ...]
    choices: tuple[tuple[Any, ...], ...]

    @property
    def size(self) -> int:
        total = 1
        for values in self.choices:
            total *= len(values)
        return total

    @property
    def strides(self) -> tuple[int, ...]:
        out, stride = [], 1
        for values in reversed(self.choices):
            out.append(stride)
            stride *= len(values)
        return tuple(reversed(out))

    def digits(self, index: int) -> list[int]:
        out = []
        for values in reversed(self.choices):
            index, digit = divmod(index, len(values))
            out.append(digit)
        return out[::-1]

    def case(self, index: int) -> dict[str, Any]:
        return {f: self.choices[i][d] for i, (f, d) in enumerate(zip(self.fields, self.digits(index), strict=True))}

    def cases(self, start: int, stop: int) -> Iterator[dict[str, Any]]:
        """`case(i)` for i in [start, stop), counting the digits up instead of dividing for each."""
        digits = self.digits(start) if start < self.size else []
        current = [values[d] for values, d in zip(self.choices, digits, strict=True)]
        fields, choices = self.fields, self.choices
        for _ in range(start, min(stop, self.size)):
            yield dict(zip(fields, current, strict=True))
            place = len(digits) - 1
            while place >= 0:
                digits[place] += 1
                if digits[place] < len(choices[place]):
                    current[place] = choices[place][digits[place]]
                    break
                digits[place] = 0
                current[place] = choices[place][0]
                place -= 1

    def index(self, case: dict[str, Any]) -> int:
        return sum(self.choices[i].index(case[f]) * s for i, (f, s) in enumerate(zip(self.fields, self.strides, strict=True)))

    def merged(self, other: Space) -> Space:
        """Each field's values in either space, this one's first: two rule bases' versions of a
        space (a site may accept an approach under one only) enumerated as one."""
        if (self.name, self.fields) != (other.name, other.fields):
            raise ValueError(f"cannot merge space {other.name} {other.fields} into {self.name} {self.fields}")
        return Space(self.name, self.fields, tuple(tuple(dict.fromkeys(a + b)) for a, b in zip(self.choices, other.choices, strict=True)))

    def chunks(self, count: int) -> Iterator[tuple[int, int]]:
        step = -(-self.size // count)
        for start in range(0, self.size, step):
            yield start, min(start + step, self.size)


def free_space() -> Space:
    choices = tuple(VARIANCE_SETS if f == "anatomy_variance" else CASE_FIELDS[f].values for f in FREE_FIELDS)
    return Space("free", FREE_FIELDS, choices)


def _sites(knowledge: KnowledgeBase, sites: Sequence[str] | None) -> tuple[str, ...]:
    """The catalogue's sites, or those of `sites` it knows, in the order given."""
    return tuple(knowledge.sites) if sites is None else tuple(s for s in sites if s in knowledge.sites)


def site_space(knowledge: KnowledgeBase, sites: Sequence[str] | None = None) -> Space:
    fields = ("site", "injectate", "anatomy_variance", *BOOL_FIELDS)
    choices: Sequence[tuple[Any, ...]] = (
        _sites(knowledge, sites),
        CASE_FIELDS["injectate"].values,
        VARIANCE_SETS,
        *(CASE_FIELDS[f].values for f in BOOL_FIELDS),
    )
    return Space("sites", fields, tuple(choices))


def as_json_case(case: dict[str, Any]) -> dict[str, Any]:
    """A point of a space as a case JSON object would give it (lists, not tuples)."""
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in case.items()}


def approach_space(knowledge: KnowledgeBase, sites: Sequence[str] | None = None) -> Space:
    """Every site that accepts a named `approach` (the constraints in the rule base decide which)
    with every approach, injectate, variance set and flag: the site space holds approach at its
    default, so this space is where approach-dependent rules and invariants are exercised."""
    from guidance_rules.errors import CaseError
    from guidance_rules.rulebase.resolve import resolve

    approaches = CASE_FIELDS["approach"].values
    named = tuple(v for v in approaches if v != knowledge.field_defaults.get("approach"))

    def accepts(site: str) -> bool:
        try:
            resolve({"site": site, "injectate": CASE_FIELDS["injectate"].values[0], "approach": named[0]}, knowledge)
        except CaseError:
            return False
        return True

    fields = ("site", "approach", "injectate", "anatomy_variance", *BOOL_FIELDS)
    accepting = tuple(key for key in _sites(knowledge, sites) if accepts(key))
    choices = (accepting, approaches, CASE_FIELDS["injectate"].values, VARIANCE_SETS, *(CASE_FIELDS[f].values for f in BOOL_FIELDS))
    return Space("approach", fields, tuple(choices))


# The one definition of the enumerated spaces, in the order they are enumerated: the audit and the
# rule-change diff both build their spaces from it, so a space added here is enumerated by both.
BUILDERS: dict[str, Callable[[KnowledgeBase, Sequence[str] | None], Space]] = {
    "free": lambda knowledge, sites: free_space(),
    "sites": site_space,
    "approach": approach_space,
}
SITELESS = ("free",)  # spaces without a site field: left out by --quick and by a site filter


def space_names(quick: bool = False) -> tuple[str, ...]:
    return tuple(name for name in BUILDERS if not (quick and name in SITELESS))


def audit_spaces(knowledge: KnowledgeBase, quick: bool = False, sites: Sequence[str] | None = None) -> list[Space]:
    """The spaces the audit enumerates, empty ones left out: --quick leaves out the large
    field-by-field space; `sites` narrows the others to those sites."""
    spaces = (space_named(name, knowledge, sites) for name in space_names(quick))
    return [s for s in spaces if s.size]


def space_named(name: str, knowledge: KnowledgeBase, sites: Sequence[str] | None = None) -> Space:
    """A space by name (workers get names, not spaces); an unknown name is an error, never
    quietly another space."""
    if name not in BUILDERS:
        raise ValueError(f"no space named '{name}'; spaces: {', '.join(BUILDERS)}")
    return BUILDERS[name](knowledge, sites)
