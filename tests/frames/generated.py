"""Generated rows of cases for the frames tests and benchmark: points of the enumerated spaces
(mostly distinct), some with words as people type them, and a share of invalid rows of the kinds a
warehouse holds (a misspelt value, a missing required field, a boolean as text, a wrong type)."""

from __future__ import annotations

import random
from typing import Any

from guidance_rules.rulebase.load import default_knowledge
from guidance_rules.rulebase.space import as_json_case, free_space, site_space

INVALID = (
    lambda case: {**case, "injectate": "prpp"},
    lambda case: {k: v for k, v in case.items() if k != "injectate"},
    lambda case: {**case, "palpable": "true"},
    lambda case: {**case, "site": 7},
    lambda case: {**case, "anatomy_variance": ["obesity", "bogus"]},
)


def rows(count: int, *, seed: int = 11, invalid: float = 0.05) -> list[dict[str, Any]]:
    """`count` cases with an `id` (a number), about `invalid` of them invalid."""
    spaces = [free_space(), site_space(default_knowledge())]
    rng = random.Random(seed)
    out = []
    for number in range(count):
        space = spaces[0] if rng.random() < 0.8 else spaces[1]
        case = as_json_case(space.case(rng.randrange(space.size)))
        if "site" in case and rng.random() < 0.2:
            case["site"] = case["site"].title() + " "  # as typed: batch and frames fold it alike
        if rng.random() < invalid:
            case = rng.choice(INVALID)(case)
        out.append({"id": number, **case})
    return out


def typed(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows a typed table (Arrow, Spark) can hold, one type a column (no boolean as text, no
    number as a site), every column in every row."""
    kept = [row for row in rows if not isinstance(row.get("palpable"), str) and not isinstance(row.get("site"), int)]
    names = sorted({name for row in kept for name in row})
    return [{name: row.get(name) for name in names} for row in kept]
