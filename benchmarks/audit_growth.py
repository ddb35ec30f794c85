"""How the audit and the rule-change diff grow with the case space (issue 22, target 3: one more
boolean field that the rules read should cost at most 1.3x, not 2x).

The same enumeration the audit's workers run (`evaluate_chunk`, the real engine and every per-case
check) and the diff's (`diff_chunk`), in this one process, over the site space of the first few
sites twice: once with a boolean field the rules read held at one value (the space without that
field), once with it varied (the same space with the field added: twice the cases). Alternating
rounds, each from a fresh Recommender and no memo kept; the median of each and the ratio are
printed with the load average.

    .venv/bin/python -m benchmarks.audit_growth [--field contrast_confirmation] [--sites 4] [--rounds 3] [--runs audit diff]

A measurement, not a test: nothing here fails on a slow machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from guidance_rules.audit import check, diff
from guidance_rules.recommendation import pool
from guidance_rules.recommendation.pool import RuleBase
from guidance_rules.rulebase.load import default_rules_dir, load
from guidance_rules.rulebase.space import Space, site_space


def _without(space: Space, field: str) -> Space:
    """The space with `field` held at its first value: the space as if the field did not exist."""
    at = space.fields.index(field)
    return Space(space.name, space.fields, tuple(c[:1] if i == at else c for i, c in enumerate(space.choices)))


def _timed(run: str, base: RuleBase, space: Space) -> float:
    pool.forget()  # a fresh Recommender: no strata memo carried from the previous round
    check._checkers.clear()  # and no verdict memo
    started = time.perf_counter()
    if run == "audit":
        check.evaluate_chunk(base, space, 0, space.size)
    else:
        diff.diff_chunk(base, base, space, 0, space.size)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--field", default="contrast_confirmation", help="a boolean field the rules read")
    parser.add_argument("--sites", type=int, default=4, help="how many of the catalogue's sites (default 4)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--runs", nargs="+", choices=("audit", "diff"), default=["audit", "diff"], help="what to measure (default both)")
    args = parser.parse_args()
    directory = default_rules_dir().resolve()
    knowledge = load(directory)
    base = RuleBase(str(directory), knowledge.digest)
    whole = site_space(knowledge, list(knowledge.sites)[: args.sites])
    smaller = _without(whole, args.field)
    print(f"site space of {args.sites} sites: {smaller.size:,} cases with {args.field} held, {whole.size:,} with it varied")
    for run in args.runs:
        times: dict[str, list[float]] = {"held": [], "varied": []}
        loads = [os.getloadavg()[0]]
        for _ in range(args.rounds):
            times["held"].append(_timed(run, base, smaller))
            times["varied"].append(_timed(run, base, whole))
            loads.append(os.getloadavg()[0])
        held, varied = statistics.median(times["held"]), statistics.median(times["varied"])
        print(
            f"{run}: {held:.2f} s held, {varied:.2f} s varied: {varied / held:.2f}x (target <= 1.3x; "
            f"{args.rounds} alternating rounds, load average {min(loads):.1f}-{max(loads):.1f})"
        )


if __name__ == "__main__":
    main()
