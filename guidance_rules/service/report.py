"""Override rates by site, modality and rule (and rule per site) over a period, from the
consultation record, with the override reasons of each group: which rules' answers clinicians
accept and which they override, and why."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

NO_REASON = "(no reason given)"


class _Cell:
    """Counts of one group: consultations, with feedback, accepted, overridden, and the reasons."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.reasons: Counter[str] = Counter()

    def add(self, outcome: str | None, reason: str | None) -> None:
        self.counts["consultations"] += 1
        if outcome:
            self.counts["with_feedback"] += 1
            self.counts[outcome] += 1
            if outcome == "overridden":
                self.reasons[reason or NO_REASON] += 1

    def finish(self, *, reasons: bool = False) -> dict[str, Any]:
        """The counts and the override rate (overridden / with feedback; null when none came
        back); with `reasons`, the override reasons too, most frequent first."""
        out: dict[str, Any] = {k: self.counts.get(k, 0) for k in ("consultations", "with_feedback", "accepted", "overridden")}
        out["override_rate"] = round(out["overridden"] / out["with_feedback"], 4) if out["with_feedback"] else None
        if reasons:
            out["override_reasons"] = self.ordered_reasons()
        return out

    def ordered_reasons(self) -> dict[str, int]:
        return dict(sorted(self.reasons.items(), key=lambda kv: (-kv[1], kv[0])))


def override_report(rows: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Counts per group; a rule's groups count the answers whose reasoning chain holds the rule
    (the rules that decided that answer, as recorded with the consultation)."""
    groups: dict[str, dict[str, _Cell]] = {k: defaultdict(_Cell) for k in ("site", "modality", "rule")}
    by_rule_site: dict[str, dict[str, _Cell]] = defaultdict(lambda: defaultdict(_Cell))
    total, unreadable = _Cell(), 0
    for row in rows:
        if row["status"] != "recommended":
            unreadable += 1
            continue
        feedback = row.get("outcome") or {}
        outcome, reason = feedback.get("outcome"), feedback.get("override_code")
        site, rules = row["site"] or "-", sorted(set(row["rules"] or []))
        for kind, values in {"site": [site], "modality": [row["modality"]], "rule": rules}.items():
            for value in values:
                groups[kind][value].add(outcome, reason)
        for rule in rules:
            by_rule_site[rule][site].add(outcome, reason)
        total.add(outcome, reason)
    return {
        "total": {**total.finish(), "unreadable_orders": unreadable},
        "override_reasons": total.ordered_reasons(),
        **{f"by_{kind}": {k: v.finish() for k, v in sorted(cells.items())} for kind, cells in groups.items()},
        "override_reasons_by_rule": {rule: cell.ordered_reasons() for rule, cell in sorted(groups["rule"].items()) if cell.reasons},
        "by_rule_site": {
            rule: {site: cell.finish(reasons=True) for site, cell in sorted(sites.items())} for rule, sites in sorted(by_rule_site.items())
        },
    }


def _rate(cell: dict[str, Any]) -> str:
    return "-" if cell["override_rate"] is None else f"{cell['override_rate'] * 100:.1f}%"


def _line(key: str, cell: dict[str, Any]) -> str:
    return (
        f"  {key:<26} {cell['consultations']:>8} {cell['with_feedback']:>8} {cell['accepted']:>8} {cell['overridden']:>8} {_rate(cell):>7}"
    )


def _reasons(reasons: dict[str, int]) -> list[str]:
    return [" " * 6 + "overridden for: " + ", ".join(f"{code} {n}" for code, n in reasons.items())] if reasons else []


def render(report: dict[str, Any]) -> str:
    period = report.get("period") or {}
    lines = [f"Consultations {period.get('since') or 'from the start'} to {period.get('until') or 'now'}"]
    t = report["total"]
    lines.append(
        f"  {t['consultations']} recommendations, {t['with_feedback']} with feedback: {t['accepted']} accepted, "
        f"{t['overridden']} overridden (override rate {_rate(t)}); {t['unreadable_orders']} orders could not be read"
    )
    header = f"{'consults':>8} {'feedback':>8} {'accepted':>8} {'overrode':>8} {'rate':>7}"
    for kind in ("site", "modality", "rule"):
        lines += ["", f"{'by ' + kind:<28} {header}"]
        for key, cell in report[f"by_{kind}"].items():
            lines.append(_line(key, cell))
            lines += _reasons(report["override_reasons_by_rule"].get(key, {})) if kind == "rule" else []
    lines += ["", f"{'by rule and site':<28} {header}"]
    for rule, sites in report["by_rule_site"].items():
        lines.append(f"  {rule}")
        for site, cell in sites.items():
            lines.append(_line("  " + site, cell))
            lines += _reasons(cell["override_reasons"])
    if report["override_reasons"]:
        lines += ["", "override reasons"] + [f"  {code:<26} {n:>8}" for code, n in report["override_reasons"].items()]
    return "\n".join(lines)
