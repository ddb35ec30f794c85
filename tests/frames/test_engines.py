"""The adapters on real engines: a dask.distributed LocalCluster and pyspark in local mode, over
generated rows with invalid ones (GUIDANCE_RULES_FRAMES_ROWS, 100,000 by default): exactly one
output row per input row, each equal to one-by-one `recommend` and to `batch` on the same rows."""

from __future__ import annotations

import os
import shutil
import sys
from collections import Counter
from typing import Any

import pytest

from tests.frames.conftest import ENGINE_ROWS, of_output
from tests.frames.generated import typed

# One xdist worker runs them all (scripts/test.sh: --dist loadgroup), so the generated rows and
# their batch and one-by-one answers are computed once, not once per worker.
pytestmark = pytest.mark.xdist_group("frames-engines")


def test_batch_and_one_by_one_agree_on_the_generated_rows(by_batch: dict[int, Any], one_by_one: dict[int, Any]) -> None:
    assert len(by_batch) == len(one_by_one) == ENGINE_ROWS
    # the first rows that differ, not a diff of 100,000 entries (difflib on those runs for hours)
    differ = [key for key in one_by_one if by_batch.get(key) != one_by_one[key]][:3]
    assert not differ, [(key, by_batch.get(key), one_by_one[key]) for key in differ]
    statuses = Counter(value[0] for value in by_batch.values())
    assert statuses["invalid"] > ENGINE_ROWS // 50 and statuses["ok"] > ENGINE_ROWS // 4, statuses


def check(out: list[dict[str, Any]], given: list[dict[str, Any]], one_by_one: dict[int, Any], by_batch: dict[int, Any]) -> None:
    ids = [row["id"] for row in out]
    assert Counter(ids) == Counter(row["id"] for row in given)  # one output row per input row, none lost or doubled
    for row in out:
        assert of_output(row) == one_by_one[row["id"]] == by_batch[row["id"]], row["id"]


def test_dask_local_cluster(engine_rows: list[dict[str, Any]], one_by_one: dict[int, Any], by_batch: dict[int, Any]) -> None:
    pd = pytest.importorskip("pandas", reason="pandas is not installed: pip install 'guidance-rules[dask]'")
    dask = pytest.importorskip("dask", reason="dask is not installed: pip install 'guidance-rules[dask]'")
    dd = pytest.importorskip("dask.dataframe", reason="dask.dataframe is not installed: pip install 'guidance-rules[dask]'")
    distributed = pytest.importorskip("distributed", reason="dask.distributed is not installed: pip install 'guidance-rules[dask]'")
    from guidance_rules.frames.dask import score

    frame = pd.DataFrame(engine_rows, dtype=object)  # object columns hold what a warehouse's raw table may: a boolean as text
    with dask.config.set({"dataframe.convert-string": False}):
        parts = dd.from_pandas(frame, npartitions=max(2, len(frame) // 25_000))
        scored = score(parts, id_col="id")
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
        with cluster, distributed.Client(cluster):
            out = scored.compute()
    assert list(out.index) == list(frame.index) and list(out.columns) == list(scored.columns)  # index kept, columns as meta said
    check(out.to_dict("records"), engine_rows, one_by_one, by_batch)


def _spark() -> Any:
    pytest.importorskip("pyspark", reason="pyspark is not installed: pip install 'guidance-rules[spark]'")
    pytest.importorskip("pyarrow", reason="pyarrow is not installed: pip install 'guidance-rules[spark]'")
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip("no Java runtime for Spark: apt-get install default-jre-headless")
    from pyspark.sql import SparkSession

    os.environ["PYSPARK_PYTHON"] = os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    return (
        SparkSession.builder.master("local[2]")
        .appName("guidance-rules-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .getOrCreate()
    )


def test_spark_local_mode(engine_rows: list[dict[str, Any]], one_by_one: dict[int, Any], by_batch: dict[int, Any]) -> None:
    spark = _spark()
    import pyarrow as pa

    from guidance_rules.frames.spark import case_struct, recommend_udf, score

    given = typed(engine_rows)
    frame = spark.createDataFrame(pa.Table.from_pylist(given).to_pandas()).repartition(4)
    out = [row.asDict(recursive=True) for row in score(frame, id_col="id").collect()]
    check(out, given, one_by_one, by_batch)
    assert spark.createDataFrame([], "id BIGINT, site STRING, injectate STRING").transform(lambda df: score(df, id_col="id")).count() == 0

    small = frame.limit(2_000)
    udf = recommend_udf()
    scored = small.withColumn("guidance", udf(case_struct(small, exclude=("id",)))).select("id", "guidance.*").collect()
    for row in scored:
        assert of_output(row.asDict(recursive=True)) == one_by_one[row["id"]]
    assert len(scored) == min(2_000, len(given))


def test_ray_data_map_batches(engine_rows: list[dict[str, Any]], one_by_one: dict[int, Any], by_batch: dict[int, Any]) -> None:
    ray = pytest.importorskip("ray", reason="ray is not installed: pip install 'guidance-rules[ray]'")
    pytest.importorskip("ray.data", reason="ray[data] is not installed: pip install 'guidance-rules[ray]'")
    import pyarrow as pa

    from guidance_rules.frames.ray import Scorer

    given = typed(engine_rows)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": {"PYTHONPATH": os.getcwd()}})
    try:
        dataset = ray.data.from_arrow(pa.Table.from_pylist(given))
        # One actor with a whole CPU, and a CPU left for Ray's own read and split tasks: actors that
        # take every CPU leave none for those, and the job waits forever.
        scored = dataset.map_batches(Scorer, fn_constructor_kwargs={"id_col": "id"}, batch_format="pyarrow", concurrency=1, num_cpus=1)
        out = scored.to_arrow_refs()
        table = pa.concat_tables(ray.get(out))
    finally:
        ray.shutdown()
    check(table.to_pylist(), given, one_by_one, by_batch)
