"""The command line: argument handling (`commands.main`), input parsing (`inputs`), `batch`, and
the human-readable output (`render`)."""

from __future__ import annotations

import gc
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """The `guidance-rules` command as a process runs it (the script and `python -m guidance_rules`).

    A one-shot process pays for Python's cyclic garbage collector twice without gaining from it:
    loading the modules (pydantic building its validators) allocates enough to trigger many full
    scans of objects that live until exit, and at exit one more scan walks them all. So the
    collector is paused while the modules load, what they built is frozen out of later scans
    (`gc.freeze`), and so is what is alive when the command ends; collection itself stays on
    while the command runs, so a long batch or audit never accumulates garbage.
    """
    gc.disable()
    try:
        from guidance_rules.cli.commands import main as run
    finally:
        gc.freeze()
        gc.enable()
    code = run(argv)
    gc.freeze()
    return code


__all__ = ["main"]
