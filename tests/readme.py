"""The README's example blocks, re-run and compared with the text, so the README cannot drift.

Every fenced block in README.md is preceded by a marker comment saying what is done with it:

    <!-- readme: check NAME -->          re-run and compared: `$ guidance-rules ...` lines each
                                         followed by what the command prints, or `>>>` Python
    <!-- readme: not run: REASON -->     shown but not run (a synopsis, a setup step, a server
                                         command), with the reason in the README itself

A block without a marker fails `tests/test_readme.py`, so none is skipped silently. In expected
output, a line holding only `...` stands for any number of lines (an excerpt), and in Python
output `...` inside a line stands for any text (doctest's ELLIPSIS). Digests, times, versions
and worker counts are masked before comparing (`MASKS`).

    python -m tests.readme              run every checked block and report (exit 1 on a difference)
    python -m tests.readme --update     rewrite the README's outputs with what the code prints now
    python -m tests.readme --update --refresh   ... and today's digests and times as well
    python -m tests.readme NAME ...     only these blocks

`--update` keeps each `...` line of an excerpt where it is (it fails, naming the block, when a
shown line can no longer be placed); read `git diff README.md` before committing.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import doctest
import functools
import io
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
MARKER = re.compile(r"^<!-- readme: (?:check (?P<name>[\w-]+)|not run: (?P<reason>.+?)) -->$")
FENCE = re.compile(r"^```(?P<info>\S*)\s*$")
PROMPT = "$ "
# Masked on both sides before comparing: they change with every rule edit, run or machine.
MASKS = [
    (re.compile(r"sha256:[0-9a-f]{12,64}"), "sha256:<digest>"),
    (re.compile(r"\b\d+\.\d+\.\d+\b"), "<version>"),
    (re.compile(r"\b\d+(\.\d+)? s\b"), "<seconds> s"),
    (re.compile(r"\b\d+ worker process(es)?\b"), "<n> worker processes"),
]
DOCTEST_FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


@dataclass
class Block:
    """One fenced block: its marker, where its content lines are in the README, and the lines."""

    name: str | None  # None: not run
    reason: str | None
    info: str
    first: int  # index of the first content line in the README's lines
    lines: list[str] = field(default_factory=list)


class Unmarked(Exception):
    pass


def blocks(text: str | None = None) -> list[Block]:
    """Every fenced block with its marker; raises Unmarked naming each block that has none."""
    lines = (README.read_text() if text is None else text).split("\n")
    found: list[Block] = []
    unmarked: list[str] = []
    i = 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if not fence:
            i += 1
            continue
        previous = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        marker = MARKER.match(previous.strip())
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        if marker is None:
            unmarked.append(f"line {i + 1}: ```{fence['info']} {lines[i + 1][:60]!r}")
        else:
            found.append(Block(marker["name"], marker["reason"], fence["info"], i + 1, lines[i + 1 : end]))
        i = end + 1
    if unmarked:
        raise Unmarked("README blocks without a '<!-- readme: ... -->' marker:\n  " + "\n  ".join(unmarked))
    names = [b.name for b in found if b.name]
    if len(names) != len(set(names)):
        raise Unmarked(f"two README blocks share a name: {sorted(n for n in names if names.count(n) > 1)}")
    return found


def checked() -> list[Block]:
    return [b for b in blocks() if b.name]


# -- comparing ----------------------------------------------------------------------------------


def mask(line: str) -> str:
    for pattern, replacement in MASKS:
        line = pattern.sub(replacement, line)
    return line.rstrip()


def _elided(line: str) -> bool:
    return line.strip() == "..."


def matches(expected: list[str], actual: list[str]) -> bool:
    """Whether the output matches the shown lines, a `...` line standing for any lines."""
    want, got = [mask(x) for x in expected], [mask(x) for x in actual]

    @functools.cache
    def at(i: int, j: int) -> bool:
        if i == len(want):
            return j == len(got)
        if _elided(want[i]):
            return any(at(i + 1, k) for k in range(j, len(got) + 1))
        return j < len(got) and want[i] == got[j] and at(i + 1, j + 1)

    return at(0, 0)


def updated(expected: list[str], actual: list[str]) -> list[str]:
    """The shown lines rewritten from the output: every `...` line kept, each run of shown lines
    replaced by as many output lines from where its first line is found (the first run from the
    start, a last run not followed by `...` up to the end), so that `matches` then holds."""
    if not any(_elided(x) for x in expected):
        return list(actual)
    out: list[str] = []
    position = 0
    runs: list[list[str]] = [[]]
    for line in expected:
        if _elided(line):
            runs.append([line])
            runs.append([])
        else:
            runs[-1].append(line)
    runs = [run for run in runs if run]
    for k, run in enumerate(runs):
        if _elided(run[0]):
            out.append(run[0])
            continue
        anchored = not out  # the first run starts the output
        start = position if anchored else _find(run[0], actual, position)
        if start is None or start + len(run) > len(actual):
            raise ValueError(f"the shown line {run[0].strip()!r} is no longer in the output; edit this excerpt by hand")
        end = len(actual) if k == len(runs) - 1 else start + len(run)  # the last run, unless elided after, runs to the end
        out.extend(actual[start:end])
        position = end
    return out


def _find(line: str, actual: list[str], start: int) -> int | None:
    wanted = mask(line)
    return next((k for k in range(start, len(actual)) if mask(actual[k]) == wanted), None)


# -- running ------------------------------------------------------------------------------------


def _prepare_diff_retire_effusion(folder: Path) -> None:
    """`rules-new`: the shipped rule base with LU-EFFUSION retired (the diff example)."""
    new = folder / "rules-new"
    shutil.copytree(ROOT / "rules", new)
    path = next(p for p in new.glob("*.yaml") if "- id: LU-EFFUSION\n" in p.read_text())
    text = path.read_text()
    head, rest = text.split("- id: LU-EFFUSION\n", 1)
    assert "status: active" in rest.split("- id:", 1)[0], "LU-EFFUSION is not an active rule any more"
    path.write_text(head + "- id: LU-EFFUSION\n" + rest.replace("status: active", "status: retired", 1))


# What a block's commands need in their working folder beside `rules` (the shipped rule base).
SETUPS: dict[str, Callable[[Path], None]] = {"diff-retire-effusion": _prepare_diff_retire_effusion}


@contextlib.contextmanager
def workspace(name: str) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="readme-") as tmp:
        folder = Path(tmp)
        (folder / "rules").symlink_to(ROOT / "rules")
        if name in SETUPS:
            SETUPS[name](folder)
        yield folder


def run_command(command: str, folder: Path) -> list[str]:
    """What `guidance-rules ...` prints to standard output, run by this interpreter (no terminal,
    no colour, so the 96-column layout)."""
    argv = shlex.split(command)
    if argv[0] != "guidance-rules":
        raise ValueError(f"a checked command must start with 'guidance-rules': {command!r}")
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "FORCE_COLOR")} | {"NO_COLOR": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "guidance_rules", *argv[1:]],
        cwd=folder, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    if result.returncode not in (0, 1) or "Traceback" in result.stderr:
        raise RuntimeError(f"{command!r} exited {result.returncode}: {result.stderr[-2000:]}")
    return result.stdout.rstrip("\n").split("\n")


def _console(block: Block, refresh: bool = False) -> tuple[list[str], list[str]]:
    """(the block as shown, the block as it would be with today's output; with `refresh`, masked
    values such as digests and times are today's too)."""
    assert block.name is not None
    if not block.lines or not block.lines[0].startswith(PROMPT):
        raise ValueError(f"block {block.name}: a checked console block starts with '$ guidance-rules ...'")
    new: list[str] = []
    with workspace(block.name) as folder:
        i = 0
        while i < len(block.lines):
            command = block.lines[i][len(PROMPT) :]
            j = next((k for k in range(i + 1, len(block.lines)) if block.lines[k].startswith(PROMPT)), len(block.lines))
            expected, actual = block.lines[i + 1 : j], run_command(command, folder)
            new.append(block.lines[i])
            new.extend(expected if matches(expected, actual) and not refresh else _update_or_actual(expected, actual))
            i = j
    return block.lines, new


def _update_or_actual(expected: list[str], actual: list[str]) -> list[str]:
    try:
        return updated(expected, actual)
    except ValueError:
        return actual


def _python(block: Block) -> tuple[list[str], list[str]]:
    """Run a `>>>` block example by example in one namespace; a differing output is replaced."""
    text = "\n".join(block.lines) + "\n"
    examples = doctest.DocTestParser().get_examples(text)
    checker, namespace = doctest.OutputChecker(), {"__name__": "__readme__"}
    new = list(block.lines)
    outputs = []
    for example in examples:
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            exec(compile(example.source, "<README>", "single"), namespace)
        outputs.append(buffer.getvalue())
    for example, got in reversed(list(zip(examples, outputs, strict=True))):  # from the end: line numbers stay right
        if checker.check_output(example.want, got, DOCTEST_FLAGS):
            continue
        first = example.lineno + example.source.count("\n")
        count = example.want.count("\n")
        new[first : first + count] = got.rstrip("\n").split("\n") if got else []
    return block.lines, new


def compare(block: Block, refresh: bool = False) -> tuple[list[str], list[str]]:
    """(shown, today's) lines of a checked block; equal when the README holds."""
    if block.info == "python":
        return _python(block)
    return _console(block, refresh)


def differs(block: Block) -> str | None:
    """None when the block holds; else a unified diff of shown against today's output."""
    shown, now = compare(block)
    if shown == now:
        return None
    return "\n".join(difflib.unified_diff(shown, now, f"README ({block.name})", "today", lineterm=""))


def update(names: list[str], refresh: bool = False) -> list[str]:
    """Rewrite the README's checked blocks with today's output; the names of those changed."""
    lines = README.read_text().split("\n")
    changed = []
    for block in reversed(checked()):
        if names and block.name not in names:
            continue
        shown, now = compare(block, refresh)
        if shown != now:
            lines[block.first : block.first + len(shown)] = now
            changed.append(str(block.name))
    README.write_text("\n".join(lines))
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.readme", description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="only these blocks (default: every checked block)")
    parser.add_argument("--update", action="store_true", help="rewrite the README's outputs that differ with today's")
    parser.add_argument("--refresh", action="store_true", help="with --update: also today's digests, times and versions")
    args = parser.parse_args(argv)
    if args.update:
        changed = update(args.names, args.refresh)
        print(f"updated: {', '.join(changed) if changed else 'nothing (the README holds)'}; read git diff README.md")
        return 0
    failed = 0
    for block in checked():
        if args.names and block.name not in args.names:
            continue
        problem = differs(block)
        print(f"{'ok  ' if problem is None else 'DIFF'} {block.name}")
        if problem:
            print(problem)
            failed += 1
    not_run = [b for b in blocks() if not b.name]
    print(f"{len(not_run)} blocks not run, each with its reason in the README")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
