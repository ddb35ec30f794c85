"""`guidance-rules rules`: every rule in a line, or one in full."""

from __future__ import annotations

import argparse
import json
from typing import Any

import guidance_rules.cli.exits as exits
import guidance_rules.cli.render as render
from guidance_rules.errors import InputError
from guidance_rules.rulebase.domain import KnowledgeBase


def run(args: argparse.Namespace, knowledge: KnowledgeBase) -> int:
    every = (*knowledge.rules, *knowledge.inactive)
    policy = knowledge.policy
    if args.id:
        by_id: dict[str, Any] = {rule.id: rule for rule in every}
        by_id[policy.id] = policy
        wanted = args.id.strip().upper()
        if wanted not in by_id:
            import difflib

            close = difflib.get_close_matches(wanted, list(by_id), n=3, cutoff=0.5)
            hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else "."
            raise InputError([("id", f"no rule '{args.id}'{hint} Run 'guidance-rules rules' for the list.")])
        found = by_id[wanted]
        if args.json:
            print(json.dumps(render.policy_json(found) if found is policy else render.rule_json(found), indent=2))
        else:
            print(render.policy_full(found) if found is policy else render.rule_full(found))
        return exits.OK
    if args.json:
        print(json.dumps({"rules": [render.rule_json(rule) for rule in every], "policy": render.policy_json(policy)}, indent=2))
        return exits.OK
    for rule in every:
        print(render.rule_line(rule))
    print(f"{policy.id:<28} {policy.title}\n{'':<29}the last step of every chain: 'guidance-rules rules {policy.id}'")
    print(f"\n{len(knowledge.rules)} active rules, {len(knowledge.inactive)} inactive; rule base {knowledge.version}")
    return exits.OK
