"""What the command says on standard error besides errors, at the level -q / -v chose.

Errors are always said; notices (what batch detected, its summary, progress) only without -q;
details (which rule base, timings, an internal error's traceback) only with -v.
"""

from __future__ import annotations

import sys

QUIET, NORMAL, VERBOSE = 0, 1, 2
_level = NORMAL


def set_level(level: int) -> None:
    global _level
    _level = level


def level() -> int:
    return _level


def notice(text: str) -> None:
    """Say `text` on standard error unless -q was given."""
    if _level >= NORMAL:
        print(text, file=sys.stderr)


def detail(text: str) -> None:
    """Say `text` on standard error only with -v."""
    if _level >= VERBOSE:
        print(text, file=sys.stderr)
