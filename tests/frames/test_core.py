"""The engine-neutral batch API: one output row per input row, in order, answers equal to one
by one `recommend` and to `batch` on the same rows; bad rows are data, configuration raises."""

from __future__ import annotations

import io
import json
import pickle
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from guidance_rules.cli.batch import process
from guidance_rules.cli.inputs import Columns, read_jsonl
from guidance_rules.errors import EngineError, RuleFileError
from guidance_rules.frames import arrow_schema, score_records, spark_ddl
from guidance_rules.model import fold_case as fold_words
from guidance_rules.recommendation.recommender import Recommender, process_recommender
from guidance_rules.rulebase.load import default_rules_dir, load
from tests.frames.generated import rows, typed

ROWS = rows(3_000)


def expected(recommender: Recommender, row: dict[str, Any]) -> dict[str, Any]:
    """What one-by-one `recommend` says of a row (folded as batch folds what people type)."""
    case = fold_words({k: v for k, v in row.items() if k != "id"})
    try:
        answer = recommender.recommend(case)
    except Exception as error:  # ValidationError: invalid
        return {"status": "invalid", "error": type(error).__name__}
    return {
        "status": "ok",
        "modality": answer.modality.value,
        "ratings": [getattr(answer.ratings, m).category.value for m in ("ultrasound", "fluoroscopy", "both", "landmark")],
        "rules": list(answer.chain_rules()),
        "ruleset": answer.ruleset.digest,
    }


def seen(row: dict[str, Any]) -> dict[str, Any]:
    if row["status"] != "ok":
        return {"status": row["status"], "error": "ValidationError"}
    ratings = [row[m] for m in ("ultrasound", "fluoroscopy", "both", "landmark")]
    return {"status": "ok", "modality": row["modality"], "ratings": ratings, "rules": row["rules"], "ruleset": row["ruleset"]}


def test_one_row_per_input_row_in_order_equal_to_one_by_one(recommender: Recommender) -> None:
    out = list(score_records(ROWS, id_col="id", recommender=recommender))
    assert [row["id"] for row in out] == [row["id"] for row in ROWS]
    assert [seen(row) for row in out] == [expected(recommender, row) for row in ROWS]
    statuses = {row["status"] for row in out}
    assert statuses == {"ok", "invalid"}, statuses


def test_equal_to_batch_on_the_same_file(recommender: Recommender) -> None:
    text = "".join(json.dumps(row) + "\n" for row in ROWS).encode()
    out = io.BytesIO()
    process(read_jsonl(io.BytesIO(text), Columns(id_column="id")), recommender, out, with_id=True)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    full = list(score_records(ROWS, id_col="id", full=True, recommender=recommender))
    assert len(lines) == len(full) == len(ROWS)
    for line, row in zip(lines, full, strict=True):
        assert line["id"] == row["id"]
        if "recommendation" in line:
            assert row["status"] == "ok"
            assert json.loads(row["answer"]) == line["recommendation"]
        else:
            assert row["status"] == "invalid"
            assert row["errors"] == line["errors"]


def test_rows_that_are_not_cases_are_data_not_exceptions(recommender: Recommender) -> None:
    given: list[Any] = [
        {"id": "a", "site": "knee", "injectate": "prp", "colour": "red"},
        5,
        {"id": "b"},
        {"id": "c", "site": None, "injectate": float("nan")},
    ]
    out = list(score_records(given, id_col="id", recommender=recommender))
    assert [row["status"] for row in out] == ["invalid"] * 4
    assert out[0]["errors"][0]["field"] == "colour" and "ignore_extra=True" in out[0]["errors"][0]["message"]
    assert out[1] == {**out[1], "id": None, "errors": [{"field": None, "message": "expected a mapping of case fields, got int"}]}
    assert out[2]["errors"][0]["field"] == "injectate"
    assert out[3]["errors"][0]["field"] == "injectate"  # missing cells are absent fields, not values
    ignored = list(score_records(given[:1], id_col="id", ignore_extra=True, recommender=recommender))
    assert ignored[0]["status"] == "ok"


def test_a_case_the_rule_base_cannot_answer_is_a_failed_row(recommender: Recommender, monkeypatch: pytest.MonkeyPatch) -> None:
    fresh = Recommender(recommender.knowledge)
    real = fresh.recommend_many

    def gap(cases: list[Any]) -> list[Any]:
        answers = real(cases)
        return [EngineError("no rating rule fired") if case.get("site") == "knee" else a for case, a in zip(cases, answers, strict=True)]

    monkeypatch.setattr(fresh, "recommend_many", gap)
    out = list(score_records([{"site": "knee", "injectate": "prp"}, {"site": "hip", "injectate": "prp"}], recommender=fresh))
    assert [row["status"] for row in out] == ["failed", "ok"]
    assert out[0]["errors"] == [{"field": None, "message": "the rule base could not answer this case: no rating rule fired"}]


def test_configuration_problems_raise(tmp_path: Path) -> None:
    with pytest.raises(RuleFileError, match="not found"):
        process_recommender(tmp_path / "missing")
    with pytest.raises(RuleFileError, match="install the same rule files"):
        process_recommender(None, "sha256:" + "0" * 64)


def test_the_schema_as_arrow_and_spark_ddl_name_the_same_columns() -> None:
    pa = pytest.importorskip("pyarrow", reason="pyarrow is not installed (pip install 'guidance-rules[dask]')")
    schema = arrow_schema(id_col="id", id_type=pa.int64(), full=True)
    ddl = spark_ddl(id_col="id", id_type="BIGINT", full=True)
    assert schema.names == re.findall(r"`(\w+)`", ddl)
    assert schema.field("errors").type == pa.list_(pa.struct([("field", pa.string()), ("message", pa.string())]))


def test_pandas_cells_as_pandas_holds_them(recommender: Recommender) -> None:
    pd = pytest.importorskip("pandas", reason="pandas is not installed (pip install 'guidance-rules[dask]')")
    np = pytest.importorskip("numpy")
    from guidance_rules.frames import score_pandas

    frame = pd.DataFrame(
        {
            "id": [10, 11, 12],
            "site": ["Knee", "hip", None],
            "injectate": ["prp", "prp", "prp"],
            "palpable": [np.bool_(True), None, False],
            "anatomy_variance": [np.array(["obesity"]), None, np.array([], dtype=object)],
        },
        index=[5, 6, 7],
    )
    out = score_pandas(frame, id_col="id", recommender=recommender)
    assert list(out.index) == [5, 6, 7] and list(out["id"]) == [10, 11, 12]
    want = [expected(recommender, {"site": "knee", "injectate": "prp", "palpable": True, "anatomy_variance": ["obesity"]})]
    want.append(expected(recommender, {"site": "hip", "injectate": "prp"}))
    want.append(expected(recommender, {"injectate": "prp", "palpable": False, "anatomy_variance": []}))
    assert [seen(row) for row in out.to_dict("records")] == want


def test_arrow_in_and_out_keeps_the_id_type(recommender: Recommender) -> None:
    pa = pytest.importorskip("pyarrow", reason="pyarrow is not installed (pip install 'guidance-rules[dask]')")
    from guidance_rules.frames import score_arrow, score_arrow_iter

    given = typed(ROWS)[:500]
    table = pa.Table.from_pylist(given)  # one type a column: no boolean as text
    out = score_arrow(table.to_batches()[0], id_col="id", recommender=recommender)
    assert out.schema == arrow_schema(id_col="id", id_type=pa.int64())
    assert [seen(row) for row in out.to_pylist()] == [expected(recommender, row) for row in given]
    assert {row["status"] for row in out.to_pylist()} == {"ok", "invalid"}
    parts = list(score_arrow_iter(table.to_batches(max_chunksize=100), id_col="id", recommender=recommender))
    assert sum(p.num_rows for p in parts) == 500 and pa.Table.from_batches(parts).to_pylist() == out.to_pylist()


def test_a_recommender_pickles_as_its_rule_base_and_is_built_once_per_process(recommender: Recommender, tmp_path: Path) -> None:
    again = pickle.loads(pickle.dumps(recommender))
    assert again is process_recommender() and again.knowledge.digest == recommender.knowledge.digest
    assert pickle.loads(pickle.dumps(Recommender())) is again
    assert again.recommend({"site": "knee", "injectate": "prp"}) == recommender.recommend({"site": "knee", "injectate": "prp"})
    with pytest.raises(TypeError, match="on_fire"):
        pickle.dumps(Recommender(recommender.knowledge, on_fire=lambda rule: None))
    copy = tmp_path / "rules"
    shutil.copytree(default_rules_dir(), copy)
    sent = pickle.dumps(Recommender(load(copy)))
    assert pickle.loads(sent) is again  # the same rule files (by digest): the process's one Recommender
    with (copy / "ruleset.yaml").open("a") as handle:
        handle.write("# a rule author's edit\n")
    sent = pickle.dumps(Recommender(load(copy)))  # rules no Recommender of this process was built from
    with (copy / "ruleset.yaml").open("a") as handle:
        handle.write("# changed again where the work runs\n")
    with pytest.raises(RuleFileError, match="install the same rule files"):
        pickle.loads(sent)


def test_the_ray_scorer_takes_each_batch_format_ray_hands_it(recommender: Recommender) -> None:
    pa = pytest.importorskip("pyarrow", reason="pyarrow is not installed (pip install 'guidance-rules[ray]')")
    pd = pytest.importorskip("pandas", reason="pandas is not installed (pip install 'guidance-rules[ray]')")
    from guidance_rules.frames.ray import Scorer

    given = [{"id": 1, "site": "Knee", "injectate": "prp"}, {"id": 2, "site": "knee", "injectate": "prpp"}]
    want = [expected(recommender, row) for row in given]
    scorer = Scorer(id_col="id")
    table = pa.Table.from_pylist(given)
    assert [seen(row) for row in scorer(table).to_pylist()] == want
    assert isinstance(scorer(table), pa.Table) and isinstance(scorer(table.to_batches()[0]), pa.RecordBatch)  # the kind given
    assert [seen(row) for row in scorer(pd.DataFrame(given)).to_dict("records")] == want
    columns = scorer({name: table.column(name).to_numpy() for name in table.column_names})  # Ray's default: numpy arrays
    assert list(columns["id"]) == [1, 2] and list(columns["status"]) == ["ok", "invalid"]
