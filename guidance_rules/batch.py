"""Many cases in, one JSON line out per case, in order; a bad line never stops the rest.

Input is read and output written one line at a time, so memory stays flat however
large the file. Each output line is either
  {"line": N, "recommendation": {...}}  or  {"line": N, "errors": [{"field": ..., "message": ...}]}
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import TextIO

from pydantic import ValidationError

from .inputs import Record, problems_of
from .knowledge import KnowledgeBase
from .recommender import Recommender

EXIT_OK, EXIT_INVALID = 0, 2


def _error_line(line: int, problems: list[tuple[str, str]]) -> str:
    errors = [{"field": field or None, "message": message} for field, message in problems]
    return json.dumps({"line": line, "errors": errors}, separators=(",", ":"))


def process(
    records: Iterator[Record], recommender: Recommender, out: TextIO, progress: Callable[[], object] | None = None
) -> tuple[int, int]:
    """Write one output line per record; return (good, bad) counts."""
    good = bad = 0
    for record in records:
        if record.data is None:
            out.write(_error_line(record.line, record.problems) + "\n")
            bad += 1
        else:
            try:
                text = recommender.recommend_json(recommender.case(record.data))
            except ValidationError as error:
                out.write(_error_line(record.line, problems_of(error, recommender.knowledge)) + "\n")
                bad += 1
            else:
                out.write(f'{{"line":{record.line},"recommendation":{text}}}\n')
                good += 1
        if progress is not None:
            progress()
    return good, bad


def run_batch(args: argparse.Namespace, knowledge: KnowledgeBase, reader: Callable[[str, str | None, TextIO], Iterator[Record]]) -> int:
    recommender = Recommender(knowledge)
    with ExitStack() as stack:
        if args.input == "-":
            source: TextIO = sys.stdin
        else:
            try:
                source = stack.enter_context(open(args.input, encoding="utf-8", newline=""))
            except FileNotFoundError:
                from .cli import Invalid

                raise Invalid([("input", f"'{args.input}' not found")]) from None
        out: TextIO = stack.enter_context(open(args.out, "w", encoding="utf-8")) if args.out else sys.stdout
        progress = None
        if sys.stderr.isatty():
            from tqdm import tqdm

            bar = stack.enter_context(tqdm(unit=" cases", file=sys.stderr, mininterval=0.5))
            progress = bar.update  # called with no argument: one case
        good, bad = process(reader(args.input, args.format, source), recommender, out, progress)
    print(f"batch: {good + bad} lines, {good} recommended, {bad} invalid", file=sys.stderr)
    return EXIT_INVALID if bad else EXIT_OK
