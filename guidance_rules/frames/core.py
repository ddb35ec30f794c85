"""Scoring tables of cases: records, pandas DataFrames and Arrow record batches, one output row
per input row, in order. A bad row is never an exception: its output row says `invalid` (the
input's fault) or `failed` (the rule base could not answer it) with its errors as
`[{field, message}]`, the messages `batch` gives. Only configuration problems raise (the engine
unavailable, an unreadable rule base), before any row is answered.

The compact output (the default) holds the modality, the four ratings, the chain's rule ids and
the ruleset digest: about 600 bytes a row as JSON instead of the full answer's 7-12 kB; `full=True` adds
the full answer as JSON text (`answer`). pandas and pyarrow are imported only by the functions
that take or make their objects.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from guidance_rules.recommendation.recommender import Recommender, process_recommender
from guidance_rules.recommendation.rows import Outcome, Scorer, case_cells

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

BLOCK = 256  # rows whose new cases are evaluated together (as batch)
RATINGS = ("ultrasound", "fluoroscopy", "both", "landmark")
# (column, Spark SQL type) of the output, in order; `answer` only with full=True.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("status", "STRING"),
    ("modality", "STRING"),
    ("errors", "ARRAY<STRUCT<field: STRING, message: STRING>>"),
    *((name, "STRING") for name in RATINGS),
    ("rules", "ARRAY<STRING>"),
    ("ruleset", "STRING"),
)
ANSWER = ("answer", "STRING")


@dataclass(frozen=True)
class Options:
    """How rows are read and what is written: the id column carried to the output (a case field
    named so stays in the case too), whether other non-case columns are ignored (default: such a
    row is invalid, as in batch), and whether the full answer is added."""

    id_col: str | None = None
    ignore_extra: bool = False
    full: bool = False

    def columns(self) -> list[str]:
        names = [name for name, _ in COLUMNS] + (["answer"] if self.full else [])
        return ([self.id_col] if self.id_col else []) + names


@dataclass(frozen=True)
class Planned:
    """What a worker needs to build its Recommender, checked where the work is planned: the rule
    directory (None: the worker's shipped rule base, wherever its package is installed), the
    digest the worker's rule files must have, and where the worker keeps parsed rule bases."""

    rules: str | None
    digest: str
    cache_dir: str | None = None

    @classmethod
    def of(cls, rules: str | Path | None = None, cache_dir: str | Path | None = None) -> Planned:
        """Load the rule base here, so a configuration problem raises before any task starts."""
        knowledge = process_recommender(rules).knowledge
        directory = None if rules is None else str(knowledge.directory)
        return cls(directory, knowledge.digest, None if cache_dir is None else str(cache_dir))

    def recommender(self) -> Recommender:
        """This process's Recommender for the planned rule base (built on first use)."""
        return process_recommender(self.rules, self.digest, cache_dir=self.cache_dir)


def _recommender(recommender: Recommender | None) -> Recommender:
    """The given Recommender, else this process's for the shipped rule base (built once)."""
    return recommender if recommender is not None else process_recommender()


def _row(ident: Any, outcome: Outcome, options: Options, full_json: str | None) -> dict[str, Any]:
    row: dict[str, Any] = {options.id_col: ident} if options.id_col else {}
    answer = outcome.answer
    row["status"] = outcome.status
    row["modality"] = answer.modality.value if answer else None
    row["errors"] = [{"field": field or None, "message": message} for field, message in outcome.problems]
    for name in RATINGS:
        row[name] = getattr(answer.ratings, name).category.value if answer else None
    row["rules"] = list(answer.chain_rules()) if answer else None
    row["ruleset"] = answer.ruleset.digest if answer else None
    if options.full:
        row["answer"] = full_json
    return row


def _score_block(scorer: Scorer, rows: list[Any], options: Options) -> list[dict[str, Any]]:
    cells = [case_cells(row, id_col=options.id_col, ignore_extra=options.ignore_extra) for row in rows]
    outcomes = scorer.outcomes([case for _, case, _ in cells], [problems for _, _, problems in cells])
    texts: list[str | None] = [None] * len(rows)
    if options.full:
        answered = [(i, cells[i][1]) for i, o in enumerate(outcomes) if o.status == "ok"]
        for (i, _), text in zip(answered, scorer.recommender.recommend_many_json([case for _, case in answered]), strict=True):  # type: ignore[misc]
            texts[i] = text if isinstance(text, str) else None
    return [_row(ident, outcome, options, text) for (ident, _, _), outcome, text in zip(cells, outcomes, texts, strict=True)]


def score_records(
    records: Iterable[Mapping[str, Any]],
    *,
    recommender: Recommender | None = None,
    id_col: str | None = None,
    ignore_extra: bool = False,
    full: bool = False,
) -> Iterator[dict[str, Any]]:
    """One output dict per input record, in order, read and answered a block at a time (so an
    endless iterator is scored with bounded memory)."""
    options = Options(id_col, ignore_extra, full)
    scorer = Scorer(_recommender(recommender))
    rows = iter(records)
    while block := list(itertools.islice(rows, BLOCK)):
        yield from _score_block(scorer, block, options)


def score_pandas(frame: pd.DataFrame, **options: Any) -> pd.DataFrame:
    """The output rows of a DataFrame as a DataFrame with the same index (for Dask's map_partitions)."""
    import pandas as pd

    records = frame.to_dict("records")
    out = list(score_records(records, **options))
    names = Options(options.get("id_col"), options.get("ignore_extra", False), options.get("full", False)).columns()
    return pd.DataFrame(out, columns=names, index=frame.index)


def score_pandas_iter(frames: Iterable[pd.DataFrame], **options: Any) -> Iterator[pd.DataFrame]:
    """`score_pandas` over an iterator of DataFrames (Spark's mapInPandas), one Recommender for all."""
    recommender = _recommender(options.pop("recommender", None))
    for frame in frames:
        yield score_pandas(frame, recommender=recommender, **options)


def score_arrow(batch: pa.RecordBatch | pa.Table, **options: Any) -> pa.RecordBatch:
    """The output rows of an Arrow record batch (or table) as a record batch; the id column keeps
    its Arrow type."""
    import pyarrow as pa

    id_col = options.get("id_col")
    id_type = batch.schema.field(id_col).type if id_col and id_col in batch.schema.names else pa.string()
    schema = arrow_schema(id_col=id_col, id_type=id_type, full=options.get("full", False))
    return pa.RecordBatch.from_pylist(list(score_records(batch.to_pylist(), **options)), schema=schema)


def score_arrow_iter(batches: Iterable[pa.RecordBatch], **options: Any) -> Iterator[pa.RecordBatch]:
    """`score_arrow` over an iterator of record batches (Spark's mapInArrow), one Recommender for all."""
    recommender = _recommender(options.pop("recommender", None))
    for batch in batches:
        yield score_arrow(batch, recommender=recommender, **options)


def arrow_schema(*, id_col: str | None = None, id_type: Any = None, full: bool = False) -> pa.Schema:
    """The output's Arrow schema (the id column first when given, as `id_type`, default string)."""
    import pyarrow as pa

    error = pa.struct([("field", pa.string()), ("message", pa.string())])
    types = {"errors": pa.list_(error), "rules": pa.list_(pa.string())}
    fields = [pa.field(id_col, id_type or pa.string())] if id_col else []
    fields += [pa.field(name, types.get(name, pa.string())) for name, _ in COLUMNS]
    if full:
        fields.append(pa.field("answer", pa.string()))
    return pa.schema(fields)


def spark_ddl(*, id_col: str | None = None, id_type: str = "STRING", full: bool = False) -> str:
    """The output schema as a Spark DDL string (the id column first when given, as `id_type`)."""
    columns = [*COLUMNS, ANSWER] if full else list(COLUMNS)
    if id_col:
        columns.insert(0, (id_col, id_type))
    return ", ".join(f"`{name}` {kind}" for name, kind in columns)
