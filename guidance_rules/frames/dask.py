"""Dask: score a dask DataFrame partition by partition (`score`), with the output's `meta`, so
no partition is computed to learn the schema. Each worker process builds one Recommender for
the rule base and keeps it. The engine serialises evaluations in a process: give each Dask worker
one thread (`LocalCluster(threads_per_worker=1)`, `dask worker --nthreads 1`), and use partitions
of 10,000-50,000 rows (the compact output is about 600 bytes a row as JSON)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from guidance_rules.frames.core import Options, Planned, arrow_schema, score_pandas

if TYPE_CHECKING:
    import dask.dataframe as dd
    import pandas as pd


def meta(*, id_col: str | None = None, id_dtype: Any = object, full: bool = False) -> pd.DataFrame:
    """An empty DataFrame with the output's columns and dtypes (Dask's `meta`)."""
    import pandas as pd

    names = Options(id_col=id_col, full=full).columns()
    dtypes = {name: id_dtype if name == id_col else object for name in names}
    assert [f.name for f in arrow_schema(id_col=id_col, full=full)] == names
    return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in dtypes.items()})


def _partition(frame: pd.DataFrame, planned: Planned, **options: Any) -> pd.DataFrame:
    return score_pandas(frame, recommender=planned.recommender(), **options)


def score(
    frame: dd.DataFrame,
    *,
    id_col: str | None = None,
    ignore_extra: bool = False,
    full: bool = False,
    rules: str | Path | None = None,
    cache_dir: str | Path | None = None,
) -> dd.DataFrame:
    """One output row per input row, partitions and index kept. `rules`: a rule directory present
    on every worker (default: the shipped rule base)."""
    planned = Planned.of(rules, cache_dir)  # here: configuration problems raise before any task
    id_dtype = frame.dtypes[id_col] if id_col else object
    return frame.map_partitions(
        _partition,
        planned,
        id_col=id_col,
        ignore_extra=ignore_extra,
        full=full,
        meta=meta(id_col=id_col, id_dtype=id_dtype, full=full),
    )
