"""Every command of `guidance-rules` by name. Each is one module of this package with
`run(args, knowledge) -> int`, imported only when that command runs (start-up stays short);
the service adds serve and consultations to this table when the parser is built."""

from __future__ import annotations

import argparse
import importlib

from guidance_rules.cli.parser import Command
from guidance_rules.rulebase.domain import KnowledgeBase


def _module(name: str) -> Command:
    def run(args: argparse.Namespace, knowledge: KnowledgeBase) -> int:
        command: Command = importlib.import_module(f"guidance_rules.cli.{name}").run
        return command(args, knowledge)

    return run


COMMANDS: dict[str, Command] = {
    "recommend": _module("recommend"),
    "what-if": _module("whatif"),
    "examples": _module("examples"),
    "diff": _module("diff"),
    "rules": _module("rules"),
    "schema": _module("schema"),
    "audit": _module("audit"),
    "table": _module("table"),
    "batch": _module("batch"),
}
