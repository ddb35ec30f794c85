"""One validity for the library and batch (issue 21, point 8): batch reads every case through the
model's public `fold_case`, so a job on the library reproduces batch's answers and errors row by
row with `recommend(fold_case(row))`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from guidance_rules import Recommender, fold_case
from tests.conftest import ROOT

ROWS: list[dict[str, Any]] = [
    {"site": "Knee", "injectate": "PRP "},
    {"site": " hip", "injectate": "Cell_Based", "anatomy_variance": ["Obesity", " effusion"]},
    {"region": "Peripheral", "depth": "DEEP", "tissue": "Joint", "injectate": "corticosteroid", "palpable": False},
    {"site": "knee", "injectate": "prp", "available_modalities": ["Ultrasound"], "approach": "SuperoLateral"},
    {"site": "Knee", "injectate": "steroid"},  # still invalid: folding fixes case and spaces only
    {"site": "knee", "injectate": "prp", "palpable": "TRUE"},  # a flag is not a word: invalid in both
]


def _batch(path: Path) -> list[dict[str, Any]]:
    result = subprocess.run([sys.executable, "-m", "guidance_rules", "batch", str(path)], capture_output=True, cwd=ROOT, timeout=300)
    assert result.returncode in (0, 2), result.stderr.decode()
    return [json.loads(line) for line in result.stdout.decode().splitlines()]


def _library(row: dict[str, Any], recommender: Recommender) -> dict[str, Any]:
    try:
        return {"recommendation": json.loads(recommender.recommend_json(fold_case(row)))}
    except ValidationError as error:
        return {"errors": sorted(str(e["loc"][0]) for e in error.errors())}


def test_the_library_reproduces_batch_row_by_row(tmp_path: Path, recommender: Recommender) -> None:
    source = tmp_path / "cases.jsonl"
    source.write_text("".join(json.dumps(row) + "\n" for row in ROWS))
    out = _batch(source)
    assert [record["line"] for record in out] == list(range(1, len(ROWS) + 1))
    for row, record in zip(ROWS, out, strict=True):
        mine = _library(row, recommender)
        if "errors" in record:
            assert mine.get("errors") == sorted(e["field"] for e in record["errors"]), (row, record)
        else:
            assert mine == {"recommendation": record["recommendation"]}, row
    assert sum("recommendation" in r for r in out) == 4


def test_a_spreadsheet_row_is_folded_by_the_same_function(tmp_path: Path, recommender: Recommender) -> None:
    source = tmp_path / "cases.csv"
    source.write_text("site,injectate,anatomy_variance\nKnee,PRP ,Obesity; EFFUSION\n")
    (record,) = _batch(source)
    row = {"site": "Knee", "injectate": "PRP ", "anatomy_variance": ["Obesity", " EFFUSION"]}
    assert _library(row, recommender) == {"recommendation": record["recommendation"]}


def test_fold_case_folds_words_only() -> None:
    row = {"site": " Knee ", "injectate": "PRP", "anatomy_variance": ("Obesity",), "palpable": "True", "depth": 3, "extra": "X"}
    assert fold_case(row) == {
        "site": "knee",
        "injectate": "prp",
        "anatomy_variance": ["obesity"],
        "palpable": "True",
        "depth": 3,
        "extra": "X",
    }
    assert row["site"] == " Knee "  # the caller's mapping is not changed
