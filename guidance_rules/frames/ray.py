"""Ray Data: a callable class for `Dataset.map_batches`, one Recommender per actor:

    ds.map_batches(Scorer, fn_constructor_kwargs={"id_col": "id"}, batch_format="pyarrow",
                   concurrency=N, num_cpus=1)

The engine serialises evaluations in a process, so an actor gains nothing from more than one CPU
and should have a whole one (`num_cpus=1`). Keep N below the cluster's CPUs: actors holding every
CPU leave none for Ray Data's own read and split tasks, and the job waits forever (on a 2-CPU
machine, N=1)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from guidance_rules.frames.core import score_arrow, score_pandas
from guidance_rules.recommendation.recommender import process_recommender


class Scorer:
    """Scores one batch of cases: a pyarrow Table/RecordBatch, a pandas DataFrame, or Ray's
    default dict of numpy arrays; returns the same kind."""

    def __init__(
        self,
        *,
        id_col: str | None = None,
        ignore_extra: bool = False,
        full: bool = False,
        rules: str | Path | None = None,
        cache_dir: str | Path | None = None,
    ) -> None:
        self.recommender = process_recommender(rules, cache_dir=cache_dir)  # in the actor: the cache folder first
        self.options: dict[str, Any] = {"id_col": id_col, "ignore_extra": ignore_extra, "full": full}

    def __call__(self, batch: Any) -> Any:
        if isinstance(batch, dict):
            import pyarrow as pa

            table = pa.table({name: list(values) for name, values in batch.items()})
            out = score_arrow(table, recommender=self.recommender, **self.options)
            return {name: out.column(name).to_numpy(zero_copy_only=False) for name in out.schema.names}
        if hasattr(batch, "to_pylist"):  # Arrow: a Table back for a Table (Ray refuses a RecordBatch)
            out = score_arrow(batch, recommender=self.recommender, **self.options)
            return out if not hasattr(batch, "to_batches") else type(batch).from_batches([out], schema=out.schema)
        return score_pandas(batch, recommender=self.recommender, **self.options)
