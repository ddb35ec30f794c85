"""Override rates by site, modality and rule over a period, from the consultation record."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any


def override_report(rows: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Counts per group: consultations, with feedback, accepted, overridden, override rate
    (overridden / with feedback; null when none came back)."""
    groups: dict[str, dict[str, dict[str, int]]] = {k: defaultdict(lambda: defaultdict(int)) for k in ("site", "modality", "rule")}
    reasons: dict[str, int] = defaultdict(int)
    total: dict[str, int] = defaultdict(int)
    for row in rows:
        if row["status"] != "recommended":
            total["unreadable"] += 1
            continue
        outcome = (row.get("outcome") or {}).get("outcome")
        keys = {"site": [row["site"] or "-"], "modality": [row["modality"]], "rule": sorted(set(row["rules"] or []))}
        for kind, values in keys.items():
            for value in values:
                cell = groups[kind][value]
                cell["consultations"] += 1
                if outcome:
                    cell["with_feedback"] += 1
                    cell[outcome] += 1
        total["consultations"] += 1
        if outcome:
            total["with_feedback"] += 1
            total[outcome] += 1
            if outcome == "overridden":
                reasons[(row["outcome"] or {}).get("override_code") or "(no reason given)"] += 1

    def finish(cell: dict[str, int]) -> dict[str, Any]:
        out: dict[str, Any] = {k: cell.get(k, 0) for k in ("consultations", "with_feedback", "accepted", "overridden")}
        out["override_rate"] = round(out["overridden"] / out["with_feedback"], 4) if out["with_feedback"] else None
        return out

    return {
        "total": {**finish(total), "unreadable_orders": total.get("unreadable", 0)},
        "override_reasons": dict(sorted(reasons.items(), key=lambda kv: -kv[1])),
        **{f"by_{kind}": {k: finish(v) for k, v in sorted(cells.items())} for kind, cells in groups.items()},
    }


def render(report: dict[str, Any]) -> str:
    def rate(cell: dict[str, Any]) -> str:
        return "-" if cell["override_rate"] is None else f"{cell['override_rate'] * 100:.1f}%"

    period = report.get("period") or {}
    lines = [f"Consultations {period.get('since') or 'from the start'} to {period.get('until') or 'now'}"]
    t = report["total"]
    lines.append(
        f"  {t['consultations']} recommendations, {t['with_feedback']} with feedback: {t['accepted']} accepted, "
        f"{t['overridden']} overridden (override rate {rate(t)}); {t['unreadable_orders']} orders could not be read"
    )
    for kind in ("site", "modality", "rule"):
        lines += ["", f"{'by ' + kind:<28} {'consults':>8} {'feedback':>8} {'accepted':>8} {'overrode':>8} {'rate':>7}"]
        for key, cell in report[f"by_{kind}"].items():
            lines.append(
                f"  {key:<26} {cell['consultations']:>8} {cell['with_feedback']:>8} "
                f"{cell['accepted']:>8} {cell['overridden']:>8} {rate(cell):>7}"
            )
    if report["override_reasons"]:
        lines += ["", "override reasons"] + [f"  {code:<26} {n:>8}" for code, n in report["override_reasons"].items()]
    return "\n".join(lines)
