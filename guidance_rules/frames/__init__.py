"""Scoring tables of cases on any engine: records, pandas DataFrames, Arrow record batches, and
adapters for Spark (`frames.spark`), Dask (`frames.dask`) and Ray (`frames.ray`).

Every input row gets exactly one output row, in order; a bad row is data (`status` invalid or
failed, with `errors`), never an exception. pandas, pyarrow and the engines are optional: each is
imported only by what uses it (`pip install 'guidance-rules[spark]'`, `[dask]` or `[ray]`).
"""

from guidance_rules.frames.core import (
    COLUMNS,
    RATINGS,
    arrow_schema,
    score_arrow,
    score_arrow_iter,
    score_pandas,
    score_pandas_iter,
    score_records,
    spark_ddl,
)
from guidance_rules.recommendation.recommender import process_recommender

__all__ = [
    "COLUMNS",
    "RATINGS",
    "arrow_schema",
    "process_recommender",
    "score_arrow",
    "score_arrow_iter",
    "score_pandas",
    "score_pandas_iter",
    "score_records",
    "spark_ddl",
]
