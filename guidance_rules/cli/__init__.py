"""The command line: the parser (`parser`), `main` (run by `dispatch`) and its exit statuses (`exits`), one module per
command (`commands` lists them), input parsing (`inputs`), and the human-readable output (`render`).

Start-up: a one-shot process pays for Python's cyclic garbage collector without gaining from it.
Loading the command's modules (pydantic building its validators) allocates enough to trigger many
full scans of objects that all live until exit, and at exit one more scan walks them all. So the
collector is paused while this package loads, what it built is frozen out of later scans
(`gc.freeze`), and when `main` runs the process's own command line it freezes what is alive when
the command ends. Collection stays on while a command runs, so a long batch, audit or service
never accumulates garbage, and a caller that runs commands in its own process (`main([...])`) keeps
its garbage collectable.
"""

from __future__ import annotations

import gc
from collections.abc import Sequence

_collecting = gc.isenabled()
gc.disable()
try:
    from guidance_rules.cli.dispatch import main as _run
finally:
    gc.freeze()
    if _collecting:
        gc.enable()


def main(argv: Sequence[str] | None = None) -> int:
    """The `guidance-rules` command; without `argv` (the script, `python -m guidance_rules`) it
    runs the process's own command line, after which the process ends."""
    code = _run(argv)
    if argv is None:
        gc.freeze()  # the exit collection need not walk what the command built
    return code


__all__ = ["main"]
