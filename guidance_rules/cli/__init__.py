"""The command line: the parser (`parser`), `main` and its exit statuses (`exits`), one module per
command (`commands` lists them), input parsing (`inputs`), and the human-readable output (`render`)."""

from guidance_rules.cli.main import main

__all__ = ["main"]
