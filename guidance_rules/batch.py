"""Many cases in, one JSON line out per case, in order; a bad line never stops the rest.

Input is read and output written a block of lines at a time, so memory stays flat however
large the file. Each output line is either
  {"line": N, "recommendation": {...}}  or  {"line": N, "errors": [{"field": ..., "message": ...}]}
The text after the line number depends only on the case the line holds, so it is memoised
by that case (bounded): historical data repeats cases, and the case space is finite. The new
cases of a block are evaluated together in one engine session.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import BinaryIO, TextIO

from pydantic import ValidationError

from .errors import EngineError
from .inputs import Record, problems_of
from .knowledge import KnowledgeBase
from .model import Case
from .recommender import Recommender

EXIT_OK, EXIT_INVALID = 0, 2
ANSWER_CACHE = 16_384  # distinct cases whose output text is kept
BLOCK = 256  # lines read, and new cases evaluated together, at a time


def _errors(problems: list[tuple[str, str]]) -> tuple[bool, bytes]:
    errors = [{"field": field or None, "message": message} for field, message in problems]
    return False, b'"errors":' + json.dumps(errors, separators=(",", ":")).encode()


class Writer:
    """Formats the output lines for blocks of records, reusing answers for repeated cases."""

    def __init__(self, recommender: Recommender) -> None:
        self.recommender = recommender
        self.answers: OrderedDict[str, tuple[bool, bytes]] = OrderedDict()

    def _remember(self, key: str, body: tuple[bool, bytes]) -> None:
        self.answers[key] = body
        if len(self.answers) > ANSWER_CACHE:
            self.answers.popitem(last=False)

    def bodies(self, records: list[Record]) -> list[tuple[bool, bytes]]:
        """(ok, the text after the line number) for each record, in order."""
        keys = [json.dumps(r.data, sort_keys=True) if r.data is not None else "" for r in records]
        new: dict[str, Case] = {}
        for record, key in zip(records, keys, strict=True):
            if record.data is None or key in self.answers or key in new:
                continue
            try:
                new[key] = self.recommender.case(record.data)
            except ValidationError as error:
                self._remember(key, _errors(problems_of(error, self.recommender.knowledge)))
        for key, answer in zip(new, self.recommender.recommend_many(list(new.values())), strict=True):
            if isinstance(answer, EngineError):
                raise answer  # a defect of the rule base, not of this input: stop with exit 1
            self._remember(key, (True, b'"recommendation":' + answer.model_dump_json().encode()))
        out = []
        for record, key in zip(records, keys, strict=True):
            if record.data is None:
                out.append(_errors(record.problems))
            else:
                self.answers.move_to_end(key)
                out.append(self.answers[key])
        return out


def process(
    records: Iterator[Record], recommender: Recommender, out: BinaryIO, progress: Callable[[int], object] | None = None
) -> tuple[int, int]:
    """Write one output line per record; return (good, bad) counts."""
    writer = Writer(recommender)
    good = bad = 0
    while block := list(itertools.islice(records, BLOCK)):
        for record, (ok, body) in zip(block, writer.bodies(block), strict=True):
            out.write(b'{"line":%d,' % record.line + body + b"}\n")
            good += ok
            bad += not ok
        if progress is not None:
            progress(len(block))
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
            progress = bar.update
        good, bad = process(reader(args.input, args.format, source), recommender, out, progress)
        out.flush()
    print(f"batch: {good + bad} lines, {good} recommended, {bad} invalid", file=sys.stderr)
    return EXIT_INVALID if bad else EXIT_OK
