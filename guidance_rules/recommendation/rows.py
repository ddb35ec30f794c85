"""Cases as rows of data: each row answered, or its problems given as data, never an exception.

Shared by `batch` (the command line) and `guidance_rules.frames` (pandas, Arrow, Spark, Dask,
Ray), so a row is valid, folded and answered alike wherever it is scored.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ValidationError

from guidance_rules.errors import EngineError
from guidance_rules.model import Case, Recommendation, fold_case
from guidance_rules.model.case import FIELD_NAMES
from guidance_rules.recommendation.cache import LRU
from guidance_rules.recommendation.problems import problems_of, suggest, then
from guidance_rules.recommendation.recommender import Recommender

Status = Literal["ok", "invalid", "failed"]
Problem = tuple[str, str]  # (field, message); "" when the problem is the whole row's

MEMO = 4_096  # distinct rows whose outcome a Scorer keeps


def failed_problems(error: EngineError) -> list[Problem]:
    """A case the rule base cannot answer: a defect of the rule base, never of the input."""
    return [("", f"the rule base could not answer this case: {error}")]


@dataclass(frozen=True)
class Outcome:
    """One row's result: the answer when `status` is ok, else the problems."""

    status: Status
    answer: Recommendation | None = None
    problems: tuple[Problem, ...] = ()


_AS_GIVEN = frozenset({str, bool, int, list})  # most cells: returned at once (this runs for every cell)


def _plain(value: Any) -> Any:
    """A cell as plain Python: numpy scalars and arrays (pandas, Arrow) as their Python values;
    missing cells (None, NaN, pandas.NA) as None."""
    kind = type(value)
    if kind in _AS_GIVEN:
        return value
    if value is None or (isinstance(value, float) and math.isnan(value)) or kind.__name__ in ("NAType", "NaTType"):
        return None
    if not isinstance(value, str | bytes | bool | int | float) and hasattr(value, "tolist"):
        value = value.tolist()
        if isinstance(value, float) and math.isnan(value):
            return None
    return list(value) if isinstance(value, tuple) else value


def case_cells(row: Any, *, id_col: str | None = None, ignore_extra: bool = False) -> tuple[Any, dict[str, Any] | None, list[Problem]]:
    """(id, folded case fields or None, problems) of one row of a table. Missing cells are absent
    fields (filled and reported as assumptions), as in batch; a column that is not a case field is
    refused unless `ignore_extra` (a misspelt field must not be dropped silently)."""
    if not isinstance(row, Mapping):
        return None, None, [("", f"expected a mapping of case fields, got {type(row).__name__}")]
    cells = {str(key): value for key, value in row.items()}
    ident = _plain(cells.get(id_col)) if id_col else None
    if id_col and id_col not in FIELD_NAMES:
        cells.pop(id_col, None)
    data = {key: plain for key, value in cells.items() if (plain := _plain(value)) is not None}
    extra = [key for key in data if key not in FIELD_NAMES]
    if extra and ignore_extra:
        data = {key: value for key, value in data.items() if key not in extra}
    elif extra:
        hint = "to carry it to the output pass id_col=NAME, to skip such columns pass ignore_extra=True"
        fields = tuple(Case.model_fields)
        return ident, None, [(key, then(f"'{key}' is not a case field{suggest(key, fields)}", hint)) for key in extra]
    return ident, fold_case(data), []


class Scorer:
    """Outcomes for blocks of cases, each distinct case answered once (a bounded memo), the new
    ones of a block evaluated together in one engine session."""

    def __init__(self, recommender: Recommender) -> None:
        self.recommender = recommender
        self.memo: LRU[str, Outcome] = LRU(MEMO)

    def outcomes(self, cases: Sequence[dict[str, Any] | None], problems: Sequence[Iterable[Problem]] = ()) -> list[Outcome]:
        """One Outcome per case; a None case is invalid with its `problems` (same position)."""
        keys = [_key(case) for case in cases]
        found: dict[str, Outcome] = {}
        new: dict[str, dict[str, Any]] = {}
        uncached: list[int] = []
        for i, (case, key) in enumerate(zip(cases, keys, strict=True)):
            if case is None:
                continue
            if key is None:
                uncached.append(i)
            elif key not in found and key not in new:
                hit = self.memo.get(key)
                if hit is not None:
                    found[key] = hit
                else:
                    new[key] = case
        answered = self._answer([*new.values(), *(case for i in uncached if (case := cases[i]) is not None)])
        for key, outcome in zip(new, answered, strict=False):
            found[key] = outcome
            if outcome.status != "failed":
                self.memo.put(key, outcome)
        by_position = dict(zip(uncached, answered[len(new) :], strict=True))
        given = list(problems)
        out = []
        for i, (case, key) in enumerate(zip(cases, keys, strict=True)):
            if case is None:
                out.append(Outcome("invalid", problems=tuple(given[i]) if i < len(given) else ()))
            else:
                out.append(found[key] if key is not None else by_position[i])
        return out

    def _answer(self, cases: list[dict[str, Any]]) -> list[Outcome]:
        out = []
        for answer in self.recommender.recommend_many(cases):
            if isinstance(answer, ValidationError):
                out.append(Outcome("invalid", problems=tuple(problems_of(answer, self.recommender.knowledge))))
            elif isinstance(answer, EngineError):
                out.append(Outcome("failed", problems=tuple(failed_problems(answer))))
            else:
                out.append(Outcome("ok", answer=answer))
        return out


def _key(case: dict[str, Any] | None) -> str | None:
    """The memo key of a case: its JSON text; None for a case with values JSON cannot hold exactly
    (such a case is answered, not memoised: a key made from its text could match another)."""
    if case is None:
        return None
    try:
        return json.dumps(case, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError):
        return None
