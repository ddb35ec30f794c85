"""Replaying the consultation record through a rule change: every recorded consultation's case
answered under the old and the new rule base, and those whose answer would differ reported as
`diff` reports cases, grouped by site and modality change, each marked with what the clinician
did with the card (overridden, with the reason, or accepted). A rule author sees the effect of a
change on the patients actually seen, beside `diff`'s enumerated space.

Reads the record through `Store.rows` only; writes nothing.
"""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from guidance_rules.recommendation.recommender import Recommender
from guidance_rules.recommendation.rows import Outcome, Scorer

BLOCK = 256  # consultations answered together under each rule base
PARTS = ("status", "modality", "ultrasound", "fluoroscopy", "both", "landmark", "rules")


def _view(outcome: Outcome) -> dict[str, Any]:
    """What a clinician would see change: validity, the modality, each rating, the chain's rules."""
    answer = outcome.answer
    if answer is None:
        return {"status": outcome.status, "problems": [f"{f}: {m}" if f else m for f, m in outcome.problems]}
    ratings = {name: getattr(answer.ratings, name).category.value for name in PARTS[2:6]}
    return {"status": "ok", "modality": answer.modality.value, **ratings, "rules": list(answer.chain_rules())}


def _label(view: dict[str, Any]) -> str:
    return str(view["modality"]) if view["status"] == "ok" else view["status"]


@dataclass
class Group:
    """Changed consultations of one site with the same change of answer (old -> new)."""

    site: str
    old: str
    new: str
    count: int = 0
    overridden: int = 0
    accepted: int = 0
    parts: Counter[str] = field(default_factory=Counter)
    rules: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))

    def summary(self) -> dict[str, Any]:
        rules = {rule: {"old_only": n["old_only"], "new_only": n["new_only"]} for rule, n in sorted(self.rules.items())}
        return {
            "site": self.site,
            "old": self.old,
            "new": self.new,
            "count": self.count,
            "overridden": self.overridden,
            "accepted": self.accepted,
            "changed": dict(sorted(self.parts.items())),
            "rules": rules,
        }


def _change(row: dict[str, Any], before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any] | None:
    """One consultation's change (None when its answer is the same under both rule bases)."""
    parts = [part for part in PARTS if before.get(part) != after.get(part)]
    if not parts and before.get("problems") == after.get("problems"):
        return None
    feedback = row.get("outcome") or {}
    return {
        "id": row["id"],
        "created_at": row["created_at"],
        "site": row["site"],
        "recorded": row["modality"],
        "old": _label(before),
        "new": _label(after),
        "changed": parts or ["problems"],
        "rules_old_only": sorted(set(before.get("rules") or ()) - set(after.get("rules") or ())),
        "rules_new_only": sorted(set(after.get("rules") or ()) - set(before.get("rules") or ())),
        "feedback": feedback.get("outcome"),
        "override_reason": feedback.get("override_code") if feedback.get("outcome") == "overridden" else None,
        "case": row["case"],
    }


def replay(rows: Iterable[dict[str, Any]], old: Recommender, new: Recommender) -> dict[str, Any]:
    """The replay report of the consultations `rows` (as `Store.rows` gives them)."""
    scorers = Scorer(old), Scorer(new)
    counts: Counter[str] = Counter()
    changes: list[dict[str, Any]] = []
    recorded = iter(rows)
    while block := list(itertools.islice(recorded, BLOCK)):
        counts["consultations"] += len(block)
        cases = [row for row in block if row["status"] == "recommended" and row.get("case") is not None]
        counts["replayed"] += len(cases)
        before, after = (scorer.outcomes([dict(row["case"]) for row in cases]) for scorer in scorers)
        for row, b, a in zip(cases, before, after, strict=True):
            change = _change(row, _view(b), _view(a))
            if change is not None:
                changes.append(change)
    groups: dict[tuple[str, str, str], Group] = {}
    for change in changes:
        key = (change["site"] or "-", change["old"], change["new"])
        group = groups.setdefault(key, Group(*key))
        group.count += 1
        group.overridden += change["feedback"] == "overridden"
        group.accepted += change["feedback"] == "accepted"
        group.parts.update(change["changed"])
        for rule in change["rules_old_only"]:
            group.rules[rule]["old_only"] += 1
        for rule in change["rules_new_only"]:
            group.rules[rule]["new_only"] += 1
    ordered = sorted(groups.values(), key=lambda g: (-g.count, g.site, g.old, g.new))
    return {
        "old": {"version": old.knowledge.version, "digest": old.knowledge.digest},
        "new": {"version": new.knowledge.version, "digest": new.knowledge.digest},
        "consultations": counts["consultations"],
        "replayed": counts["replayed"],
        "not_replayable": counts["consultations"] - counts["replayed"],
        "changed": len(changes),
        "changed_overridden": sum(c["feedback"] == "overridden" for c in changes),
        "changed_accepted": sum(c["feedback"] == "accepted" for c in changes),
        "groups": [g.summary() for g in ordered],
        "changes": changes,
    }


def render(report: dict[str, Any], old_dir: str, new_dir: str, shown: int = 10) -> str:
    """The replay report as text: the totals, then each group with its consultations (overridden
    ones marked), at most `shown` listed per group."""
    lines = [
        f"Rule change replayed on the consultation record: {old_dir} ({report['old']['version']}, {report['old']['digest'][:19]})",
        f"                                                → {new_dir} ({report['new']['version']}, {report['new']['digest'][:19]})",
        f"  {report['consultations']:,} consultations, {report['replayed']:,} replayed "
        f"({report['not_replayable']:,} had no readable case); {report['changed']:,} would change, "
        f"{report['changed_overridden']:,} of them overridden by the clinician, {report['changed_accepted']:,} accepted",
    ]
    for group in report["groups"]:
        parts = ", ".join(f"{p} {n:,}" for p, n in group["changed"].items())
        lines.append(
            f"\n  site {group['site']:<24} {group['old']} → {group['new']}: {group['count']:,} consultation{'s' * (group['count'] != 1)}"
            f" ({group['overridden']:,} overridden, {group['accepted']:,} accepted)"
        )
        lines.append(f"        changed: {parts}")
        if group["rules"]:
            lines.append(
                "        rules: "
                + ", ".join(f"{r} (old only {n['old_only']}, new only {n['new_only']})" for r, n in group["rules"].items())
            )
        mine = [c for c in report["changes"] if (c["site"] or "-", c["old"], c["new"]) == (group["site"], group["old"], group["new"])]
        for change in mine[:shown]:
            mark = (
                f"OVERRIDDEN ({change['override_reason'] or 'no reason given'})"
                if change["feedback"] == "overridden"
                else change["feedback"] or "no feedback"
            )
            lines.append(f"        {change['id']}  {change['created_at'][:19]}  recorded {change['recorded']}  {mark}")
        if len(mine) > shown:
            lines.append(f"        ... and {len(mine) - shown:,} more (--json lists every one)")
    verdict = (
        f"CHANGED: {report['changed']:,} consultation{'s' * (report['changed'] != 1)}"
        if report["changed"]
        else "UNCHANGED: no consultation's answer differs"
    )
    return "\n".join([*lines, "", verdict])
