"""The command line: argument handling (`main`), input parsing (`inputs`), `batch`, and the
human-readable output (`render`)."""

from guidance_rules.cli.commands import main

__all__ = ["main"]
