"""Spark: score a DataFrame of cases (`score`, through mapInArrow) or make a pandas UDF
(`recommend_udf`), in the shape of mlflow's `spark_udf`. Each executor's Python worker builds one
Recommender for the rule base and keeps it; a worker whose rule files differ from the driver's
fails the task rather than answer from other rules.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from guidance_rules.frames.core import Planned, score_arrow_iter, score_pandas, spark_ddl

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa
    from pyspark.sql import Column, DataFrame


def score(
    frame: DataFrame,
    *,
    id_col: str | None = None,
    ignore_extra: bool = False,
    full: bool = False,
    rules: str | Path | None = None,
    cache_dir: str | Path | None = None,
) -> DataFrame:
    """One output row per row of `frame` (the id column first, with its type), through mapInArrow.
    `rules`: a rule directory present on every executor (default: the shipped rule base);
    `cache_dir`: where executors keep the parsed rule base (default: under their home)."""
    planned = Planned.of(rules, cache_dir)  # on the driver: configuration problems raise here
    id_type = frame.schema[id_col].dataType.simpleString().upper() if id_col else "STRING"
    options = {"id_col": id_col, "ignore_extra": ignore_extra, "full": full}

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        yield from score_arrow_iter(batches, recommender=planned.recommender(), **options)

    return frame.mapInArrow(run, spark_ddl(id_col=id_col, id_type=id_type, full=full))


def recommend_udf(*, full: bool = False, rules: str | Path | None = None, cache_dir: str | Path | None = None) -> Any:
    """A pandas UDF over one struct column of case fields, returning the output struct:
    `df.withColumn("guidance", udf(case_struct(df, exclude=("id",))))`."""
    import pandas
    from pyspark.sql.functions import pandas_udf

    planned = Planned.of(rules, cache_dir)

    def udf(cases: pd.DataFrame) -> pd.DataFrame:
        return score_pandas(cases, recommender=planned.recommender(), full=full).reset_index(drop=True)

    udf.__annotations__ = {"cases": pandas.DataFrame, "return": pandas.DataFrame}  # Spark reads the UDF's kind from them
    return pandas_udf(udf, returnType=spark_ddl(full=full))


def case_struct(frame: DataFrame, *, exclude: tuple[str, ...] = ()) -> Column:
    """A struct of every column of `frame` but `exclude` (the argument for `recommend_udf`)."""
    from pyspark.sql.functions import struct

    return struct(*[name for name in frame.columns if name not in exclude])
