"""The output model: a `Recommendation` with its ratings, reasoning steps, notes and evidence.

Every part is immutable in fact (frozen models, tuples, `FrozenMap`), so one cached answer can be
shared by every caller and thread, and still be pickled, deep-copied and sent to other processes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, GetCoreSchemaHandler
from pydantic_core import core_schema

from guidance_rules.model.case import Category, Modality

_FROZEN_STRICT = ConfigDict(frozen=True, extra="forbid", defer_build=True)


class FrozenMap(Mapping[str, Any]):
    """An immutable mapping (the facts a reasoning step read). Its items live in a tuple, so no
    `dict` method can alter it, and it pickles and deep-copies as plain data."""

    __slots__ = ("_items",)
    _items: tuple[tuple[str, Any], ...]

    def __init__(self, items: Mapping[str, Any] | Iterable[tuple[str, Any]] = ()) -> None:
        pairs = tuple(items.items()) if isinstance(items, Mapping) else tuple(items)
        object.__setattr__(self, "_items", pairs)

    def __getitem__(self, key: str) -> Any:
        for name, value in self._items:
            if name == key:
                return value
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __setattr__(self, name: str, value: Any) -> None:
        raise TypeError("recommendation data is read-only; copy it with dict(...) to change it")

    def __hash__(self) -> int:
        return hash(self._items)

    def __eq__(self, other: object) -> bool:
        return dict(self._items) == dict(other) if isinstance(other, Mapping) else NotImplemented

    def __repr__(self) -> str:
        return f"FrozenMap({dict(self._items)!r})"

    def __reduce__(self) -> tuple[type[FrozenMap], tuple[tuple[tuple[str, Any], ...]]]:
        return (FrozenMap, (self._items,))

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(
            cls,
            core_schema.dict_schema(core_schema.str_schema(), core_schema.any_schema()),
            serialization=core_schema.plain_serializer_function_ser_schema(dict, return_schema=core_schema.dict_schema()),
        )


class Rating(BaseModel):
    model_config = _FROZEN_STRICT
    category: Category
    rules: tuple[str, ...]


class Citation(BaseModel):
    model_config = _FROZEN_STRICT
    source: str
    locator: str


class Reason(BaseModel):
    """One of several reasons a step groups: the rule, what it found, and its sources."""

    model_config = _FROZEN_STRICT
    rule: str
    conclusion: str
    sources: tuple[Citation, ...]


class Step(BaseModel):
    """One step of the chain. Reasons that lead to the same derived fact form one step and are
    listed under `reasons` (the step's `rule` is the first of them). A rating that another fired
    rule overrides stays in the chain, marked with that rule under `overridden_by`; so does a reason
    the answer overrules (placed after the step that overrules it)."""

    model_config = _FROZEN_STRICT
    rule: str
    conclusion: str
    facts: FrozenMap
    sources: tuple[Citation, ...]
    reasons: tuple[Reason, ...] = ()
    overridden_by: str | None = None


class Assumption(BaseModel):
    model_config = _FROZEN_STRICT
    field: str
    value: Any
    origin: str


class Note(BaseModel):
    """A documentation item, caution or question, with the rule that raised it."""

    model_config = _FROZEN_STRICT
    rule: str
    text: str
    sources: tuple[Citation, ...]


class Evidence(BaseModel):
    model_config = _FROZEN_STRICT
    site: str
    measure: str
    ultrasound: str | None = None
    landmark: str | None = None
    note: str | None = None
    source: Citation


class Figure(BaseModel):
    """A figure from the site's own evidence, as the bottom line quotes it."""

    model_config = _FROZEN_STRICT
    text: str
    source: Citation


class Summary(BaseModel):
    """The bottom line: the modality, the decisive reason, the site's key figure, and any caution
    that changes what the clinic must do (refer)."""

    model_config = _FROZEN_STRICT
    modality: Modality
    text: str
    reason: str
    rules: tuple[str, ...]
    figure: Figure | None
    cautions: tuple[str, ...]


class Ratings(BaseModel):
    """All four modalities, each with its category and the rules that placed it there."""

    model_config = _FROZEN_STRICT
    ultrasound: Rating
    fluoroscopy: Rating
    both: Rating
    landmark: Rating

    def __getitem__(self, modality: Modality | str) -> Rating:
        rating: Rating = getattr(self, Modality(modality).value)
        return rating


class RulesetInfo(BaseModel):
    model_config = _FROZEN_STRICT
    version: str
    digest: str


class Recommendation(BaseModel):
    """The answer for one case, with every reason and source behind it."""

    model_config = _FROZEN_STRICT
    summary: Summary
    modality: Modality
    ratings: Ratings
    reasoning: tuple[Step, ...]
    assumptions: tuple[Assumption, ...]
    documentation: tuple[Note, ...]
    cautions: tuple[Note, ...]
    questions: tuple[Note, ...]
    evidence: tuple[Evidence, ...]
    ruleset: RulesetInfo

    def chain_rules(self) -> tuple[str, ...]:
        """Every rule id in the reasoning, in order: a grouped step's reasons each name theirs."""
        return tuple(rule for step in self.reasoning for rule in ([r.rule for r in step.reasons] or [step.rule]))
