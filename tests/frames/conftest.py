"""The generated rows the engine tests share, and what batch and one-by-one `recommend` say of
them (computed once per session: at CI's size, 100,000 rows)."""

from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from guidance_rules.cli.batch import process
from guidance_rules.cli.inputs import Columns, read_jsonl
from guidance_rules.model import fold_case as fold_words
from guidance_rules.recommendation.problems import problems_of
from guidance_rules.recommendation.recommender import Recommender
from tests.frames.generated import rows

# Rows the engine tests score: 100,000 as the issue asks (CI); fewer on a busy machine.
ENGINE_ROWS = int(os.environ.get("GUIDANCE_RULES_FRAMES_ROWS", "100000"))
RATINGS = ("ultrasound", "fluoroscopy", "both", "landmark")


def compact(status: str, answer: dict[str, Any] | None, errors: list[dict[str, Any]]) -> tuple[Any, ...]:
    """What the tests compare: for an answer its modality, ratings, chain and digest; else the errors."""
    if answer is None:
        return (status, tuple((e["field"], e["message"]) for e in errors))
    ratings = tuple(answer["ratings"][m]["category"] if isinstance(answer["ratings"][m], dict) else answer["ratings"][m] for m in RATINGS)
    return (status, answer["modality"], ratings, tuple(answer["rules"]), answer["ruleset"])


def of_output(row: dict[str, Any]) -> tuple[Any, ...]:
    """A frames output row (any engine's) in the compared form."""
    if row["status"] != "ok":
        return compact(row["status"], None, list(row["errors"]))
    answer = {"modality": row["modality"], "ratings": {m: row[m] for m in RATINGS}, "rules": list(row["rules"]), "ruleset": row["ruleset"]}
    return compact("ok", answer, [])


@pytest.fixture(scope="session")
def engine_rows() -> list[dict[str, Any]]:
    return rows(ENGINE_ROWS, seed=23)


@pytest.fixture(scope="session")
def one_by_one(engine_rows: list[dict[str, Any]]) -> dict[int, tuple[Any, ...]]:
    """Each row answered alone by `recommend` (folded as batch folds what people type)."""
    recommender = Recommender(cache_size=0)
    out = {}
    for row in engine_rows:
        case = fold_words({k: v for k, v in row.items() if k != "id"})
        try:
            rec = recommender.recommend(case)
        except ValidationError as error:
            problems = [{"field": f or None, "message": m} for f, m in problems_of(error, recommender.knowledge)]
            out[row["id"]] = compact("invalid", None, problems)
            continue
        answer = {
            "modality": rec.modality.value,
            "ratings": {m: getattr(rec.ratings, m).category.value for m in RATINGS},
            "rules": list(rec.chain_rules()),
            "ruleset": rec.ruleset.digest,
        }
        out[row["id"]] = compact("ok", answer, [])
    return out


@pytest.fixture(scope="session")
def by_batch(engine_rows: list[dict[str, Any]]) -> dict[int, tuple[Any, ...]]:
    """`batch` on the same rows as a JSON Lines file (its output read back a line at a time)."""
    with tempfile.TemporaryDirectory() as folder:
        source, target = Path(folder) / "in.jsonl", Path(folder) / "out.jsonl"
        source.write_text("".join(json.dumps(row) + "\n" for row in engine_rows))
        with source.open("rb") as given, target.open("wb") as out:
            process(read_jsonl(given, Columns(id_column="id")), Recommender(), out, with_id=True)
        found = {}
        with target.open("rb") as lines:
            for line in io.BufferedReader(lines):
                record = json.loads(line)
                rec = record.get("recommendation")
                if rec is None:
                    found[record["id"]] = compact("invalid", None, record["errors"])
                else:
                    rules = [r["rule"] for s in rec["reasoning"] for r in (s.get("reasons") or [s])]  # each grouped reason's
                    answer = {**rec, "rules": rules, "ruleset": rec["ruleset"]["digest"]}
                    found[record["id"]] = compact("ok", answer, [])
    return found
