"""Many cases in, one JSON line out per case, in order; a bad line never stops the rest.

Input is read and output written one line at a time, so memory stays flat however large the
file. Each output line is either
  {"line": N, "recommendation": {...}}  or  {"line": N, "errors": [{"field": ..., "message": ...}]}
The text after the line number depends only on the input line's own text, so it is memoised
by that text (bounded): historical data repeats cases, and the case space is finite.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import BinaryIO, TextIO

from pydantic import ValidationError

from .inputs import Record, problems_of
from .knowledge import KnowledgeBase
from .recommender import Recommender

EXIT_OK, EXIT_INVALID = 0, 2
LINE_CACHE = 16_384


def _errors(problems: list[tuple[str, str]]) -> bytes:
    errors = [{"field": field or None, "message": message} for field, message in problems]
    return b'"errors":' + json.dumps(errors, separators=(",", ":")).encode()


class Writer:
    """Formats one output line per record; answers for identical input text are reused."""

    def __init__(self, recommender: Recommender) -> None:
        self.recommender = recommender
        self.body = functools.lru_cache(maxsize=LINE_CACHE)(self._body)

    def _body(self, problems: tuple[tuple[str, str], ...], data_json: str) -> tuple[bool, bytes]:
        if problems:
            return False, _errors(list(problems))
        try:
            case = self.recommender.case(json.loads(data_json))
        except ValidationError as error:
            return False, _errors(problems_of(error, self.recommender.knowledge))
        return True, b'"recommendation":' + self.recommender.recommend_json(case).encode()

    def line(self, record: Record) -> tuple[bool, bytes]:
        data_json = json.dumps(record.data, sort_keys=True) if record.data is not None else ""
        ok, body = self.body(tuple(record.problems), data_json)
        return ok, b'{"line":%d,' % record.line + body + b"}\n"


def process(
    records: Iterator[Record], recommender: Recommender, out: BinaryIO, progress: Callable[[], object] | None = None
) -> tuple[int, int]:
    """Write one output line per record; return (good, bad) counts."""
    writer = Writer(recommender)
    good = bad = 0
    for record in records:
        ok, line = writer.line(record)
        out.write(line)
        good += ok
        bad += not ok
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
        out: BinaryIO = stack.enter_context(open(args.out, "wb")) if args.out else sys.stdout.buffer
        progress = None
        if sys.stderr.isatty():
            from tqdm import tqdm

            bar = stack.enter_context(tqdm(unit=" cases", file=sys.stderr, mininterval=0.5))
            progress = bar.update  # called with no argument: one case
        good, bad = process(reader(args.input, args.format, source), recommender, out, progress)
        out.flush()
    print(f"batch: {good + bad} lines, {good} recommended, {bad} invalid", file=sys.stderr)
    return EXIT_INVALID if bad else EXIT_OK
