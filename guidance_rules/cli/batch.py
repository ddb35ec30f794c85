"""`guidance-rules batch`: many cases in, exactly one JSON line out per input record.

Records are read in blocks; a block's new cases are evaluated in one engine session and
repeated cases are answered from a bounded memo. Nothing is lost: a record that cannot be
read or validated gets its own error record, a case the rule base cannot answer gets an error
record too (and exit 1), and output to a file is written beside it and renamed into place
only when complete, so an interrupted or failed run leaves the target as it was.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import io
import itertools
import json
import os
import signal
import stat
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from multiprocessing.pool import AsyncResult
from pathlib import Path
from typing import Any, BinaryIO

from pydantic import ValidationError

import guidance_rules.cli.exits as exits
import guidance_rules.cli.notices as notices
from guidance_rules.cli.inputs import Columns, CsvForm, Lines, Record, detect_csv, read_csv, read_jsonl, sniff
from guidance_rules.cli.notices import notice
from guidance_rules.cli.render import count
from guidance_rules.errors import EngineError, InputError, Terminated
from guidance_rules.recommendation.cache import LRU
from guidance_rules.recommendation.pool import RuleBase, worker_pool, worker_recommender
from guidance_rules.recommendation.problems import problems_of
from guidance_rules.recommendation.recommender import Recommender
from guidance_rules.recommendation.rows import failed_problems
from guidance_rules.rulebase.domain import KnowledgeBase

ANSWER_CACHE = 4_096  # distinct cases whose output text is kept (about 10 KB each)
HEAD = 1 << 16  # bytes looked at to detect a CSV file's encoding and delimiter
BLOCK = 256  # records read, and new cases evaluated together, at a time
POOL_AFTER = 2_048  # records answered in this process before worker processes are started
WORKER_CACHE = 256  # answers each Recommender keeps (batch keeps its own memo of output text)


@contextlib.contextmanager
def _terminate_like_interrupt() -> Iterator[None]:
    """Turn SIGTERM (kill, a service manager stopping us) into `Terminated`: by default it ends the
    process at once and leaves the hidden temporary file behind. A second one during cleanup is ignored."""

    def stop(signum: int, frame: object) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise Terminated

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@dataclass
class Tally:
    """Output records written so far, by kind, and the input line of the last one."""

    good: int = 0
    invalid: int = 0
    failed: int = 0
    last_line: int = 0

    @property
    def total(self) -> int:
        return self.good + self.invalid + self.failed


def _body_errors(problems: list[tuple[str, str]]) -> bytes:
    errors = [{"field": field or None, "message": message} for field, message in problems]
    return b'"errors":' + json.dumps(errors, separators=(",", ":")).encode()


Body = tuple[str, bytes]  # (kind, the output line's text after the line number): good, invalid or failed


class Answers:
    """Output text for blocks of records, answering each distinct case once (a bounded memo)."""

    def __init__(self, recommender: Recommender) -> None:
        self.recommender = recommender
        self.memo: LRU[str, Body] = LRU(ANSWER_CACHE)

    def plan(self, records: list[Record]) -> tuple[list[str], dict[str, Body], dict[str, dict[str, Any]]]:
        """Each record's key, the bodies the memo already holds, and the new cases to answer."""
        keys = [json.dumps(r.data, sort_keys=True) if r.data is not None else "" for r in records]
        found: dict[str, Body] = {}
        new: dict[str, dict[str, Any]] = {}
        for record, key in zip(records, keys, strict=True):
            if record.data is None or key in found or key in new:
                continue
            hit = self.memo.get(key)
            if hit is not None:
                found[key] = hit
            else:
                new[key] = record.data
        return keys, found, new

    def answer(self, cases: list[dict[str, Any]]) -> list[Body]:
        """Bodies for new cases, evaluated together in one engine session."""
        out = []
        for answer in self.recommender.recommend_many_json(cases):
            if isinstance(answer, ValidationError):
                out.append(("invalid", _body_errors(problems_of(answer, self.recommender.knowledge))))
            elif isinstance(answer, EngineError):  # a defect of the rule base, never of the input
                out.append(("failed", _body_errors(failed_problems(answer))))
            else:
                out.append(("good", b'"recommendation":' + answer.encode()))
        return out

    def assemble(self, records: list[Record], keys: list[str], found: dict[str, Body], new: list[str], bodies: list[Body]) -> list[Body]:
        for key, body in zip(new, bodies, strict=True):
            found[key] = body
            if body[0] != "failed":
                self.memo.put(key, body)
        return [("invalid", _body_errors(r.problems)) if r.data is None else found[k] for r, k in zip(records, keys, strict=True)]

    def bodies(self, records: list[Record]) -> list[Body]:
        keys, found, new = self.plan(records)
        return self.assemble(records, keys, found, list(new), self.answer(list(new.values())))


def process(
    records: Iterator[Record],
    recommender: Recommender,
    out: BinaryIO,
    *,
    with_id: bool = False,
    progress: Callable[[int], object] | None = None,
    workers: int = 1,
    tally: Tally | None = None,
) -> Tally:
    """Write one output line per record, in input order; return the counts.

    With `workers` > 1 and more than POOL_AFTER records, blocks are answered by that many worker
    processes (each with its own engine), at most two blocks each in flight, so memory stays
    bounded and the output keeps the input's order."""
    answers = Answers(recommender)
    tally = Tally() if tally is None else tally  # given, it tells an interrupted run's caller what was written
    blocks: Iterator[list[Record]] = iter(lambda: list(itertools.islice(records, BLOCK)), [])

    def write(block: list[Record], bodies: list[Body]) -> None:
        lines = []
        for record, (_, body) in zip(block, bodies, strict=True):
            ident = b'"id":' + json.dumps(record.id).encode() + b"," if with_id else b""
            lines.append(b'{"line":%d,' % record.line + ident + body + b"}\n")
        out.write(b"".join(lines))
        for kind, _ in bodies:  # counted once written
            setattr(tally, kind, getattr(tally, kind) + 1)
        tally.last_line = block[-1].line
        if progress is not None:
            progress(len(block))

    for block in itertools.islice(blocks, POOL_AFTER // BLOCK if workers > 1 else None):
        write(block, answers.bodies(block))
    if workers > 1:
        _pooled(blocks, answers, workers, write)
    return tally


def _pooled(blocks: Iterator[list[Record]], answers: Answers, workers: int, write: Callable[[list[Record], list[Body]], None]) -> None:
    """Answer the remaining blocks' new cases in worker processes; repeated cases are answered
    here from the memo, so only new cases and their answers cross between processes. Blocks
    are written in input order, at most two per worker in flight."""
    first = next(blocks, None)
    if first is None:
        return
    knowledge = answers.recommender.knowledge
    base = RuleBase(str(knowledge.directory), knowledge.digest, WORKER_CACHE)
    with worker_pool(workers, [base]) as pool:
        pending: collections.deque[tuple[list[Record], list[str], dict[str, Body], list[str], AsyncResult[list[Body]]]]
        pending = collections.deque()

        def settle() -> None:
            block, keys, found, new, result = pending.popleft()
            write(block, answers.assemble(block, keys, found, new, result.get()))

        for block in itertools.chain([first], blocks):
            keys, found, new = answers.plan(block)
            pending.append((block, keys, found, list(new), pool.apply_async(_worker_answer, (base, list(new.values())))))
            while len(pending) >= 2 * workers:
                settle()
        while pending:
            settle()


def _worker_answer(base: RuleBase, cases: list[dict[str, Any]]) -> list[Body]:
    return Answers(worker_recommender(base)).answer(cases)


def _open_input(name: str, stack: contextlib.ExitStack) -> BinaryIO:
    if name == "-":
        return sys.stdin.buffer
    path = Path(name)
    if not path.exists():
        raise InputError([("input", f"'{name}' not found")])
    if path.is_dir():
        raise InputError([("input", f"'{name}' is a directory; give a .jsonl or .csv file")])
    return stack.enter_context(path.open("rb", buffering=HEAD))


def _head(stream: BinaryIO) -> bytes:
    """The input's first bytes, left in the stream (a file is read with a HEAD-byte buffer;
    standard input gives what its buffer holds)."""
    return stream.peek(HEAD)[:HEAD] if hasattr(stream, "peek") else b""


def _format(name: str, given: str | None, head: bytes) -> tuple[str, str]:
    """The input format: as given, else from the file's extension, else from its first bytes;
    and how it was found, to be said when it was not given."""
    if given:
        return given, ""
    suffix = Path(name).suffix.lower() if name != "-" else ""
    if suffix == ".csv":
        return "csv", ""
    if suffix in (".jsonl", ".json", ".ndjson"):
        return "jsonl", ""
    return sniff(head), "from its content"


def _reader(args: argparse.Namespace, source: BinaryIO, seen: Lines) -> Iterator[Record]:
    """The records of the input, with what was detected about it said on standard error."""
    columns = Columns(id_column=args.id_column, ignore_extra=args.extra_columns == "ignore")
    head = _head(source)
    kind, how = _format(args.input, args.format, head)
    found = [how] if how else []
    if kind == "csv":
        form, detected = detect_csv(head, args.delimiter, args.encoding)
        found += detected
        records = read_csv(source, columns, form, seen)
    elif args.delimiter or args.encoding:
        option = "--delimiter" if args.delimiter else "--encoding"
        raise InputError([(option, f"applies to CSV input; {args.input} is read as JSON Lines (UTF-8); give --format csv if it is CSV")])
    else:
        form, records = CsvForm(), read_jsonl(source, columns, seen)
    if found:
        name = "standard input" if args.input == "-" else args.input
        notice(f"batch: reading {name} as {kind.upper()}; detected: {', '.join(found)} (set with --format, --delimiter, --encoding)")
    if form.encoding == "cp1252" and args.encoding is None:
        notice("batch: the input is not UTF-8 text, so it is read as Windows-1252 (as Excel saves in Western Europe)")
    return _started(records)


def _started(records: Iterator[Record]) -> Iterator[Record]:
    """The records, with the first read now: a CSV header that does not fit the options is
    refused before any output (it was an error repeated on every row)."""
    first = next(records, None)
    return itertools.chain([first] if first is not None else [], records)


def _check_target(out: Path, source: str) -> Path:
    """The file to write: a symbolic link's target (so the link stays), never the input. The
    rest (a folder, a missing or unwritable folder, a read-only file) is checked as --out is parsed."""
    if source != "-" and out.exists() and os.path.samefile(out, source):
        raise InputError([("--out", f"'{out}' is the input file; write the output to another file")])
    return Path(os.path.realpath(out))


def run(args: argparse.Namespace, knowledge: KnowledgeBase) -> int:
    recommender = Recommender(knowledge, cache_size=WORKER_CACHE)
    workers = args.workers or os.cpu_count() or 1
    target = _check_target(args.out, args.input) if args.out else None
    where = str(args.out) if target else "standard output"
    tally, seen = Tally(), Lines()
    with contextlib.ExitStack() as stack:
        stack.enter_context(_terminate_like_interrupt())
        source = _open_input(args.input, stack)
        records = _reader(args, source, seen)
        progress = _progress(stack, source, seen)

        def run(out: BinaryIO) -> Tally:
            return process(records, recommender, out, with_id=bool(args.id_column), progress=progress, workers=workers, tally=tally)

        device = target is not None and target.exists() and not target.is_file()  # a device or FIFO: never renamed over
        try:
            if device:
                assert target is not None
                run(stack.enter_context(target.open("wb")))
            elif target is None:
                try:
                    run(sys.stdout.buffer)
                    sys.stdout.buffer.flush()
                except OSError as error:
                    print(f"error: cannot write to {where}: {error.strerror or error}", file=sys.stderr)
                    return exits.ERROR
            elif isinstance(written := _write_atomically(target, run), OSError):
                print(f"error: cannot write {where}: {written.strerror or written}; {where} was left as it was", file=sys.stderr)
                return exits.ERROR
        except (KeyboardInterrupt, Terminated):
            stack.close()  # the progress bar ends before the last word
            print(_stopped(tally, where, replaced=target is not None and not device), file=sys.stderr)
            raise
    return _summary(tally, seen, where)


def _progress(stack: contextlib.ExitStack, source: BinaryIO, seen: Lines) -> Callable[[int], object] | None:
    """A progress bar on a terminal: bytes read of the input's size (so a percentage and the time
    left), and the records written."""
    if not sys.stderr.isatty() or notices.level() < notices.NORMAL:
        return None
    from tqdm import tqdm

    size = os.fstat(source.fileno()).st_size if _regular(source) else None
    bar = stack.enter_context(tqdm(total=size, unit="B", unit_scale=True, unit_divisor=1024, file=sys.stderr, mininterval=0.5))
    written = 0

    def update(records: int) -> None:
        nonlocal written
        written += records
        bar.set_postfix_str(count(written, "record"), refresh=False)
        bar.update(seen.bytes - bar.n)

    return update


def _regular(source: BinaryIO) -> bool:
    try:
        return stat.S_ISREG(os.fstat(source.fileno()).st_mode)
    except (OSError, ValueError, io.UnsupportedOperation):
        return False


def _stopped(tally: Tally, where: str, *, replaced: bool) -> str:
    """What an interrupted batch kept: a file written beside its target is removed and the target
    left as it was; records already written to standard output (or a device) stay there."""
    if replaced:
        return f"batch: interrupted; nothing was kept: {where} was left as it was (run the batch again)"
    if not tally.total:
        return f"batch: interrupted before any record was written to {where}"
    return (
        f"batch: interrupted; the {count(tally.total, 'record')} written to {where} are complete, up to input line "
        f"{tally.last_line:,}; the records after it were not written"
    )


def _summary(tally: Tally, seen: Lines, where: str) -> int:
    """Say what was read and written, input lines beside output records, and explain any
    difference; lines no record accounts for would be lost records, so they fail the batch."""
    kinds = f"{tally.good:,} recommended, {tally.invalid:,} invalid, {tally.failed:,} failed"
    counted = f"{count(seen.read, 'input line')}, {count(tally.total, 'output record')}"
    parts = [(seen.header, "header line"), (seen.blank, "blank line"), (seen.continued, "line continuing a quoted cell")]
    unaccounted = seen.read - tally.total - sum(n for n, _ in parts)
    if unaccounted:
        parts.append((unaccounted, "line no record accounts for"))
    why = ", ".join(count(n, noun, noun.replace("line", "lines", 1)) for n, noun in parts if n)
    notice(f"batch: {counted}{f' (the difference: {why})' if why else ''}: {kinds}; written to {where}")
    if unaccounted:
        print(f"error: {count(unaccounted, 'input line')} gave no output record; the output is incomplete", file=sys.stderr)
    if tally.failed or unaccounted:
        return exits.ERROR
    return exits.INVALID if tally.invalid else exits.OK


def _write_atomically(target: Path, write: Callable[[BinaryIO], Tally]) -> Tally | OSError:
    """Write to a temporary file beside `target`, then rename it into place; on any failure or
    interruption remove the temporary file, so `target` is either as before or complete. The
    new file gets the old one's mode and owner (when allowed), or a new file's usual mode."""
    temp: str | None = None
    try:
        handle, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".partial")
        with os.fdopen(handle, "wb") as out:
            _keep_mode_and_owner(out.fileno(), target)
            tally = write(out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, target)
        return tally
    except OSError as error:
        if temp is not None:
            with contextlib.suppress(OSError):
                os.unlink(temp)
        return error
    except BaseException:
        if temp is not None:
            with contextlib.suppress(OSError):
                os.unlink(temp)
        raise


def _keep_mode_and_owner(handle: int, target: Path) -> None:
    """mkstemp makes files 0600: give the replacement the mode (and owner, when this user may)
    of the file it replaces, or 0666 less the umask for a new file, as any other write would."""
    try:
        old = target.stat()
    except FileNotFoundError:
        os.fchmod(handle, 0o666 & ~_umask())
        return
    if (old.st_uid, old.st_gid) != (os.geteuid(), os.getegid()):  # before the mode: a chown clears set-id bits
        try:
            os.fchown(handle, old.st_uid, old.st_gid)
        except PermissionError:  # only root may give a file away; a member of its group may keep the group
            with contextlib.suppress(PermissionError):
                os.fchown(handle, -1, old.st_gid)
    os.fchmod(handle, old.st_mode & 0o7777)


def _umask() -> int:
    """The process umask (it can only be read by setting it; batch writes no other file meanwhile)."""
    mask = os.umask(0o077)
    os.umask(mask)
    return mask
