"""`guidance-rules audit`: run the rule-coverage audit and show its findings, as text, JSON or HTML."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import guidance_rules.cli.exits as exits
import guidance_rules.cli.notices as notices
from guidance_rules.audit.check import AuditReport, run_audit
from guidance_rules.audit.report import write_html
from guidance_rules.audit.table import decision_tables
from guidance_rules.cli.render import count
from guidance_rules.rulebase.domain import KnowledgeBase
from guidance_rules.rulebase.space import audit_spaces


def format_text(report: AuditReport) -> str:
    s = report.summary()
    lines = [f"Rule-coverage audit of rule base {s['ruleset']['version']} ({s['ruleset']['digest'][:19]})"]
    for name, c in s["cases"].items():
        lines.append(f"  {name:<6} space: {c['enumerated']:>8,} cases enumerated, {c['valid']:>8,} valid")
    lines.append("  modalities: " + ", ".join(f"{m} {n:,}" for m, n in s["modality_counts"].items()))
    lines.append(f"  {len(s['rule_firing_counts'])} rules; never fired: {', '.join(s['never_fired']) or 'none'}")
    covered = s["invariants_covered"]
    lines.append(f"  {len(covered)} clinical invariants checked on every case they cover (rules/invariants.yaml)")
    lines.append(f"  time: {s['seconds']} s with {count(s['workers'], 'worker process', 'worker processes')}")
    for f in report.findings:
        lines.append(f"{f.level.upper():<8} {f.check:<22} {f.message}" + (f"\n{'':<32}case: {json.dumps(f.case)}" if f.case else ""))
    errors = sum(f.level == "error" for f in report.findings)
    warnings = sum(f.level == "warning" for f in report.findings)
    lines.append(f"\n{'PASSED' if report.passed else 'FAILED'}: {count(errors, 'error')}, {count(warnings, 'warning')}")
    return "\n".join(lines)


def run(args: argparse.Namespace, knowledge: KnowledgeBase) -> int:
    bar: Any = None
    progress = None
    if sys.stderr.isatty() and not args.json and notices.level() >= notices.NORMAL:
        from tqdm import tqdm

        total = sum(s.size for s in audit_spaces(knowledge, args.quick))
        bar = tqdm(total=total, unit=" cases", file=sys.stderr, mininterval=0.5)
        progress = bar.update
    try:
        report = run_audit(knowledge.directory, args.workers, args.quick, progress)
    finally:
        if bar is not None:
            bar.close()
    if args.html:
        write_html(report, Path(args.html), decision_tables(knowledge))
    print(json.dumps(report.summary(), indent=2) if args.json else format_text(report))
    return exits.OK if report.passed else exits.ERROR
