"""`guidance-rules table`: the decision table, per site, as Markdown, CSV or HTML."""

from __future__ import annotations

import argparse
import sys

import guidance_rules.cli.exits as exits
from guidance_rules.audit.table import render as render_table
from guidance_rules.rulebase.domain import KnowledgeBase


def run(args: argparse.Namespace, knowledge: KnowledgeBase) -> int:
    sys.stdout.write(render_table(knowledge, args.format))
    return exits.OK
