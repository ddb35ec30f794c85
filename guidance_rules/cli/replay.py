"""`guidance-rules diff OLD NEW --consultations DB`: the rule change replayed on the consultation
record (see guidance_rules.service.replay). Exit 0 when no consultation's answer would change,
1 when one would, 2 on bad input (a rule base or the database named wrongly)."""

from __future__ import annotations

import argparse
import json
import sys

from guidance_rules.cli import exits
from guidance_rules.errors import EngineError, RuleFileError
from guidance_rules.recommendation.recommender import Recommender
from guidance_rules.rulebase.load import load


def run_replay_command(args: argparse.Namespace) -> int:
    try:
        from guidance_rules.service.errors import NoRecord, StoreUnavailable
        from guidance_rules.service.replay import render, replay
        from guidance_rules.service.store import Store
    except ImportError as error:
        print(f"error: the consultation record needs the service's extra: pip install 'guidance-rules[service]' ({error})", file=sys.stderr)
        return exits.ERROR
    unused = [option for option, given in (("--html", args.html), ("--site", args.sites)) if given]
    if unused:
        print(f"invalid input: {', '.join(unused)}: not used with --consultations (every recorded case is replayed)", file=sys.stderr)
        return exits.INVALID
    try:
        old, new = Recommender(load(args.old)), Recommender(load(args.new))
    except (RuleFileError, EngineError) as error:
        print(f"invalid input: rule base cannot be used: {error}", file=sys.stderr)
        return exits.INVALID
    try:
        store = Store(args.consultations, create=False)
        try:
            report = replay(store.rows(), old, new)
        finally:
            store.close()
    except NoRecord as error:
        print(f"invalid input: --consultations: {error.message}; give the URL the service was started with", file=sys.stderr)
        return exits.INVALID
    except StoreUnavailable as error:
        print(f"error: {error.message}", file=sys.stderr)
        return exits.ERROR
    print(json.dumps(report, indent=2) if args.json else render(report, str(args.old), str(args.new)))
    return exits.ERROR if report["changed"] else exits.OK
