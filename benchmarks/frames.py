"""Throughput of guidance_rules.frames beside `guidance-rules batch` on the same rows, in one run.

    .venv/bin/python -m benchmarks.frames [--rows N] [--repeat R] [--json FILE]

The rows are generated as the frames tests generate them (mostly distinct cases, 5% invalid).
`batch` reads them as a JSON Lines file; frames get them as Python records, an Arrow table, a
Dask DataFrame on a LocalCluster (two worker processes, one thread each) and a Spark DataFrame in
local[2] mode (scored with mapInArrow and written to Spark's no-op sink). Each figure is the
median of R runs (`--repeat`), timed after a warm-up, so a cluster's start and each worker's
first rule-base load are not counted; batch is timed as a command, start-up included. Rows per
second per core divides by the cores used (batch --workers 1 and in-process frames: one; the
clusters and batch --workers 2: two), and each is also given as a share of batch on as many cores
(on a machine shared with other work a second core is not a second core's worth, for batch
either). Engines that are not installed are left out and said. Cluster workers keep their
Recommender between repeats, as between the partitions of one job.

A measurement, not a test: nothing here fails on a slow machine.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from guidance_rules.frames import score_arrow_iter, score_records
from guidance_rules.recommendation.recommender import Recommender
from tests.frames.generated import rows as generated
from tests.frames.generated import typed

ROOT = Path(__file__).resolve().parent.parent


def median_seconds(run: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def batch(source: Path, workers: int) -> Callable[[], object]:
    def run() -> None:
        with tempfile.TemporaryDirectory() as folder:
            command = [sys.executable, "-m", "guidance_rules", "batch", str(source), "--out", f"{folder}/out.jsonl", "--id-column", "id"]
            done = subprocess.run([*command, "--workers", str(workers)], capture_output=True, cwd=ROOT)
            assert done.returncode in (0, 2), done.stderr.decode()[-500:]

    return run


def in_process(rows: list[dict[str, Any]]) -> dict[str, Callable[[], object]]:
    import pyarrow as pa

    recommender = Recommender()
    names = sorted({name for row in rows for name in row})
    typed = [
        {name: row.get(name) for name in names}
        for row in rows
        if not isinstance(row.get("palpable"), str) and not isinstance(row.get("site"), int)
    ]
    table = pa.Table.from_pylist(typed)

    def records() -> None:
        for _ in score_records(rows, id_col="id", recommender=Recommender(recommender.knowledge)):
            pass

    def arrow() -> None:
        for _ in score_arrow_iter(table.to_batches(max_chunksize=10_000), id_col="id", recommender=Recommender(recommender.knowledge)):
            pass

    return {"frames records (1 core)": records, "frames Arrow batches (1 core)": arrow}


@contextlib.contextmanager
def dask_run(rows: list[dict[str, Any]]) -> Any:
    import dask
    import dask.dataframe as dd
    import distributed
    import pandas as pd

    from guidance_rules.frames.dask import score

    frame = pd.DataFrame(rows, dtype=object)
    with (
        dask.config.set({"dataframe.convert-string": False}),
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        distributed.Client(cluster) as client,
    ):
        parts = client.persist(dd.from_pandas(frame, npartitions=8))
        score(parts.head(100, compute=False), id_col="id").compute()  # warm-up: each worker loads the rule base
        yield lambda: score(parts, id_col="id").compute()


@contextlib.contextmanager
def spark_run(rows: list[dict[str, Any]]) -> Any:
    import pyarrow as pa
    from pyspark.sql import SparkSession

    from guidance_rules.frames.spark import score

    os.environ["PYSPARK_PYTHON"] = os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    spark = SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false").getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    names = sorted({name for row in rows for name in row})
    typed = [
        {name: row.get(name) for name in names}
        for row in rows
        if not isinstance(row.get("palpable"), str) and not isinstance(row.get("site"), int)
    ]
    frame = spark.createDataFrame(pa.Table.from_pylist(typed).to_pandas()).repartition(8).cache()
    frame.count()
    score(frame.limit(100), id_col="id").write.format("noop").mode("overwrite").save()  # warm-up
    try:
        yield lambda: score(frame, id_col="id").write.format("noop").mode("overwrite").save()
    finally:
        spark.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rows = generated(args.rows, seed=5)
    results: list[dict[str, Any]] = []

    def measure(name: str, run: Callable[[], object], cores: int, count: int = args.rows) -> None:
        seconds = median_seconds(run, args.repeat)
        results.append(
            {"name": name, "rows": count, "cores": cores, "seconds": round(seconds, 2), "per_core": round(count / seconds / cores)}
        )
        print(
            f"{name:<40} {count:>9,} rows {seconds:>8.2f} s {count / seconds:>9,.0f} rows/s {count / seconds / cores:>9,.0f} per core",
            flush=True,
        )

    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "rows.jsonl"
        source.write_text("".join(json.dumps(row) + "\n" for row in rows))
        measure("batch --workers 1 (anchor)", batch(source, 1), 1)
        measure("batch --workers 2", batch(source, 2), 2)
    typed_count = len(typed(rows))
    for name, run in in_process(rows).items():
        measure(name, run, 1, typed_count if "Arrow" in name else args.rows)
    for name, engine, count in (("Dask LocalCluster 2x1", dask_run, args.rows), ("Spark local[2] mapInArrow", spark_run, typed_count)):
        try:
            with engine(rows) as run:
                measure(name, run, 2, count)
        except ImportError as error:
            print(f"{name:<40} not measured: {error}", flush=True)
    anchors = {1: results[0]["per_core"], 2: results[1]["per_core"]}  # batch on as many cores
    for result in results:
        result["per_core_vs_batch_1"] = round(result["per_core"] / anchors[1], 2)
        result["vs_batch_same_cores"] = round(result["per_core"] / anchors[result["cores"]], 2)
    print("\nper core, as a share of batch --workers 1: " + ", ".join(f"{r['name']} {r['per_core_vs_batch_1']}x" for r in results[1:]))
    print("as a share of batch on as many cores: " + ", ".join(f"{r['name']} {r['vs_batch_same_cores']}x" for r in results[2:]))
    if args.json:
        meta = {"cpus": os.cpu_count(), "load": os.getloadavg(), "python": sys.version.split()[0], "repeat": args.repeat}
        args.json.write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
