"""Filling in what a case does not say, and rejecting cases that contradict themselves.

Order of precedence: the case's own value, the site record, the tissue defaults, the field
defaults, all read from `rules/`. Every filled value becomes an assumption with its origin.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

from guidance_rules.errors import CaseError
from guidance_rules.rulebase.conditions import CASE_FIELDS, holds

if TYPE_CHECKING:
    from guidance_rules.model import Case
    from guidance_rules.rulebase.domain import KnowledgeBase

REQUIRED_WITHOUT_SITE = ("region", "depth", "tissue")


@dataclass(frozen=True)
class Resolution:
    """The case with every field filled in (plain str, bool and tuple values), and what was assumed."""

    values: Mapping[str, Any]
    assumptions: tuple[tuple[str, Any, str], ...]


def _plain(value: Any) -> Any:
    """Enum members become their string values; lists become sorted tuples."""
    kind = value.__class__
    if value is None or kind is str or kind is bool:
        return value
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (list, tuple)):
        return tuple(sorted(v.value if isinstance(v, Enum) else v for v in value))
    return value


def resolve(case: Case | Mapping[str, Any], knowledge: KnowledgeBase) -> Resolution:
    """Resolve a validated case (or a mapping of well-typed given values; absent or None means
    not given); raise CaseError (a ValueError) naming the field and the valid choice."""
    given_values: Mapping[str, Any] = case if isinstance(case, Mapping) else case.__dict__
    site_key = given_values.get("site")
    site = knowledge.sites.get(site_key) if site_key is not None else None
    if site_key is not None and site is None:
        close = difflib.get_close_matches(str(site_key), list(knowledge.sites), n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        raise CaseError(("site",), f"unknown site '{site_key}'; {hint}valid sites: {', '.join(knowledge.sites)}", "unknown_site")
    values: dict[str, Any] = {"site": site_key or "", **knowledge.site_evidence(site_key or "")}
    assumed: list[tuple[str, Any, str]] = []
    for name in CASE_FIELDS:
        given = _plain(given_values.get(name))
        if given is not None:
            if site is not None and name in knowledge.identity_fields and given != site.defaults.get(name, given):
                raise CaseError(
                    (name, "site"),
                    f"{name} '{given}' contradicts site '{site.key}', whose {name} is '{site.defaults[name]}'; "
                    f"leave {name} out, or leave out the site and describe the target field by field",
                    "contradiction",
                )
            values[name] = given
            continue
        if site is not None and name in site.defaults:
            value, origin = site.defaults[name], f"site:{site.key}"
        elif name in REQUIRED_WITHOUT_SITE:
            allowed = ", ".join(str(v) for v in CASE_FIELDS[name].values)
            raise CaseError((name,), f"{name} is required when no site is given; one of: {allowed}", "required_without_site")
        elif name in knowledge.tissue_defaults.get(values["tissue"], {}):
            value, origin = knowledge.tissue_defaults[values["tissue"]][name], f"tissue:{values['tissue']}"
        else:
            value, origin = knowledge.field_defaults[name], "default"
        value = _plain(value)
        values[name] = value
        assumed.append((name, value, origin))
    for constraint in knowledge.constraints:
        if holds(constraint.tests, values):
            shown = ", ".join(f"{t.field}={_show(values[t.field])}" for t in constraint.tests)
            raise CaseError(
                tuple(t.field for t in constraint.tests), f"contradictory case ({shown}): {constraint.message}", "contradiction"
            )
    return Resolution(values, tuple(assumed))


def _show(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)
