"""Audit checks of what a clinician reads: the explanation of every case of the space.

These prove, over every case the audit enumerates, properties of the reasoning chain as it
is shown (built by the same `Parts` that builds every answer), not of the rules alone:

- citation-fit: every source a step, a grouped reason or a note cites is evidence for the
  case (its `scope` in sources.yaml holds), and every step keeps at least one source;
- override-unmarked: a rating the chain shows unmarked is the rating the answer gives, and a
  step marked overridden names a rule that fired and overrides it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from guidance_rules.model import Citation, Step
from guidance_rules.recommendation.explain import Evaluation, Parts
from guidance_rules.rulebase.domain import KnowledgeBase
from guidance_rules.rulebase.load import in_scope

FIT_LIMIT = 65_536  # entries of a Fit memo; emptied when full (exact: a miss only recomputes)


class Fit:
    """`citation-fit` for one rule base, each (rule, citations, values the scopes read) once: most
    cases share them, and a scope reads only a few fields."""

    def __init__(self, kb: KnowledgeBase) -> None:
        self.kb = kb
        self.fields = tuple(sorted({t.field for scope in kb.scopes.values() for tests in scope for t in tests}))
        # (rule, id of the citations, values) -> (the citations, held so their id stays theirs; the misfits)
        self._memo: dict[tuple[Any, ...], tuple[tuple[Citation, ...], list[tuple[str, str]]]] = {}

    def misfits(self, rule: str, citations: tuple[Citation, ...], values: Mapping[str, Any]) -> list[tuple[str, str]]:
        key = (rule, id(citations), tuple([values[f] for f in self.fields]))
        found = self._memo.get(key)
        if found is not None and found[0] is citations:
            return found[1]
        misfits = _misfits(self.kb, rule, citations, values)
        if len(self._memo) >= FIT_LIMIT:
            self._memo.clear()
        self._memo[key] = (citations, misfits)
        return misfits


def explanation_problems(
    parts: Parts, evaluation: Evaluation, fit: Fit | None = None, steps: tuple[Step, ...] | None = None
) -> list[tuple[str, str]]:
    """(check, message) for each fault in this case's explanation; the caller adds the case.
    With `fit`, the citation checks are answered from its memo; `steps`: the chain as
    `parts.reasoning` gave it for this evaluation (else built here)."""
    kb = parts.knowledge
    misfits = fit.misfits if fit is not None else lambda rule, citations, values: _misfits(kb, rule, citations, values)
    values = evaluation.values
    steps = parts.reasoning(evaluation) if steps is None else steps
    problems: list[tuple[str, str]] = []
    for step in steps:
        if not step.sources:
            problems.append(("citation-fit", f"step {step.rule} cites no source that is evidence for this case"))
        cited: list[tuple[str, tuple[Citation, ...]]] = [(step.rule, step.sources), *((r.rule, r.sources) for r in step.reasons)]
        for rule_id, citations in cited:
            problems.extend(misfits(rule_id, citations, values))
    for note in evaluation.outputs:
        problems.extend(misfits(note.id, note.sources, values))
    problems.extend(_override_problems(kb, steps, evaluation))
    return problems


def _misfits(kb: KnowledgeBase, rule: str, citations: tuple[Citation, ...], values: Mapping[str, Any]) -> list[tuple[str, str]]:
    return [
        ("citation-fit", f"{rule} cites {c.source} ({c.locator}), which is not evidence for this case (see its scope in sources.yaml)")
        for c in citations
        if not in_scope(kb, c, values)
    ]


def _override_problems(kb: KnowledgeBase, steps: tuple[Step, ...], evaluation: Evaluation) -> list[tuple[str, str]]:
    fired = {rule.id: rule for rule in evaluation.chain}
    problems = []
    for step in steps:
        rule = fired.get(step.rule)
        if rule is None or not rule.rate:
            continue
        if step.overridden_by is not None:
            by = fired.get(step.overridden_by)
            if by is None or rule.id not in by.overrides:
                problems.append(("override-unmarked", f"{rule.id} is marked overridden by {step.overridden_by}, which did not override it"))
            continue
        for modality, category in rule.rate.items():
            final = evaluation.ratings[modality].category
            if category is not final:
                problems.append(
                    (
                        "override-unmarked",
                        f"{rule.id} shows {modality.value} {category.value} unmarked, but the answer rates it {final.value}",
                    )
                )
    return problems
