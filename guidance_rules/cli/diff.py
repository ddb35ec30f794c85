"""`guidance-rules diff OLD_RULES NEW_RULES`: the rule-change impact report, as text, JSON or HTML.
Exit 0 when no case's answer differs, 1 when one does, 2 on bad input."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import guidance_rules.cli.exits as exits
from guidance_rules.audit.diff import DiffReport, run_diff
from guidance_rules.audit.diff_report import write_html
from guidance_rules.cli.render import count, wrap
from guidance_rules.errors import CaseError, EngineError, RuleFileError
from guidance_rules.rulebase.domain import KnowledgeBase


def format_text(report: DiffReport, old_dir: str, new_dir: str) -> str:
    s = report.summary()
    lines = [
        f"Rule-change impact: {old_dir} ({s['old']['version']}, {s['old']['digest'][:19]})",
        f"                 → {new_dir} ({s['new']['version']}, {s['new']['digest'][:19]})",
    ]
    for name, c in s["cases"].items():
        lines.append(
            f"  {name:<9} space: {c['enumerated']:>8,} cases, {c['valid_old']:>8,} valid before, "
            f"{c['valid_new']:>8,} after; {c['changed']:>8,} changed"
        )
    if report.sites_added or report.sites_removed:
        lines.append(f"  sites added: {', '.join(report.sites_added) or 'none'}; removed: {', '.join(report.sites_removed) or 'none'}")
    for g in s["groups"]:
        where = f"site {g['site']}" if g["site"] else "no site"
        parts = ", ".join(f"{p} {n:,}" for p, n in g["changed"].items())
        lines.append(f"\n  {g['space']:<9} {where:<30} {g['old']} → {g['new']}: {g['count']:,} case{'s' if g['count'] != 1 else ''}")
        lines.append(f"        changed: {parts}")
        rules = [
            f"{r} ({'old only' if n['old_only'] else 'new only'} {n['old_only'] or n['new_only']:,})"
            if not (n["old_only"] and n["new_only"])
            else f"{r} (old only {n['old_only']:,}, new only {n['new_only']:,})"
            for r, n in g["rules"].items()
        ]
        shown = ", ".join(rules) or "none (the same rules fire; their text or ratings changed)"
        lines.append(wrap(f"rules firing differently: {shown}", " " * 8, " " * 10))
        lines.append(f"        example: {json.dumps(g['example'])}")
    total = s["changed_cases"]
    n = len(s["groups"])
    verdict = "UNCHANGED: no case's answer differs"
    if report.changed:
        verdict = f"CHANGED: {total:,} case{'s' * (total != 1)} in {n} group{'s' * (n != 1)}"
    lines.append(f"\n{verdict} ({s['seconds']} s with {count(s['workers'], 'worker process', 'worker processes')})")
    return "\n".join(lines)


def run(args: argparse.Namespace, knowledge: KnowledgeBase) -> int:
    """`guidance-rules diff` compares the two rule bases it names, not the loaded one."""
    return run_diff_command(args)


def run_diff_command(args: argparse.Namespace) -> int:
    for label, folder in (("OLD_RULES", args.old), ("NEW_RULES", args.new)):
        if not Path(folder).is_dir():
            print(f"invalid input: {label}: '{folder}' is not a folder; give a rule base folder such as rules/", file=sys.stderr)
            return exits.INVALID
    if args.consultations:
        from guidance_rules.cli.replay import run_replay_command

        return run_replay_command(args)
    try:
        report = run_diff(args.old, args.new, args.workers, args.sites)
    except CaseError as error:
        print(f"invalid input: --site: {error}", file=sys.stderr)
        return exits.INVALID
    except (RuleFileError, EngineError) as error:
        print(f"invalid input: rule base cannot be used: {error}", file=sys.stderr)
        return exits.INVALID
    if args.html:
        write_html(report, Path(args.html), str(args.old), str(args.new))
    print(json.dumps(report.summary(), indent=2) if args.json else format_text(report, str(args.old), str(args.new)))
    return exits.ERROR if report.changed else exits.OK
