"""`guidance-rules schema`: the JSON Schema of a case, with this rule base's sites."""

from __future__ import annotations

import argparse
import json

import guidance_rules.cli.exits as exits
from guidance_rules.model import Case
from guidance_rules.rulebase.domain import KnowledgeBase


def run(args: argparse.Namespace, knowledge: KnowledgeBase) -> int:
    schema = Case.model_json_schema()
    schema["properties"]["site"] = {
        "anyOf": [{"enum": list(knowledge.sites)}, {"type": "null"}],
        "default": None,
        "description": schema["properties"]["site"].get("description", ""),
    }
    print(json.dumps(schema, indent=2))
    return exits.OK
