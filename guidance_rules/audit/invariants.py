"""Clinical invariants as data: loading `rules/invariants.yaml` and checking answers against it.

The invariants themselves (what a clinician would call wrong) live in the rule base; this
module only knows the shape of an invariant: the cases it covers (the rules' condition
language), what must hold of the answer (conditions, rating bounds, notes present by rule id)
and the monotone-safety escalations. The audit proves them over whole case spaces; the
property tests draw cases for each one.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from guidance_rules.audit.findings import Finding
from guidance_rules.errors import RuleFileError
from guidance_rules.model import Category, Citation, Modality
from guidance_rules.rulebase.conditions import CASE_FIELDS, Test, holds, parse
from guidance_rules.rulebase.domain import OUTPUT_KINDS, KnowledgeBase
from guidance_rules.rulebase.load import check_schema, cite, read_rule_file
from guidance_rules.rulebase.resolve import resolve
from guidance_rules.rulebase.schemas import CitationSpec
from guidance_rules.rulebase.space import as_json_case

if TYPE_CHECKING:
    from guidance_rules.audit.findings import SpaceResult
    from guidance_rules.recommendation.explain import Evaluation
    from guidance_rules.recommendation.recommender import Recommender

FILE = "invariants.yaml"
# The rating scale, lowest first: "at least" and "at most" compare positions on it.
RANK = {Category.USUALLY_NOT_APPROPRIATE: 0, Category.MAY_BE_APPROPRIATE: 1, Category.USUALLY_APPROPRIATE: 2}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BoundSpec(_Strict):
    at_least: Category | None = None
    at_most: Category | None = None


class MustSpec(_Strict):
    hold: dict[str, Any] = {}
    ratings: dict[Modality, BoundSpec] = {}
    notes: tuple[str, ...] = ()


class InvariantExamplesSpec(_Strict):
    covers: tuple[dict[str, Any], ...] = Field(min_length=1)
    outside: tuple[dict[str, Any], ...] = ()


class InvariantSpec(_Strict):
    id: str = Field(pattern=r"^INV(-[A-Z0-9]+)+$")
    statement: str = Field(min_length=10)
    when: dict[str, Any]
    must: MustSpec
    sources: tuple[CitationSpec, ...] = Field(min_length=1)
    examples: InvariantExamplesSpec


class EscalationSpec(_Strict):
    id: str = Field(pattern=r"^INV(-[A-Z0-9]+)+$")
    statement: str = Field(min_length=10)
    field: str
    steps: Literal["add"] | tuple[tuple[Any, Any], ...]
    sources: tuple[CitationSpec, ...] = Field(min_length=1)
    examples: InvariantExamplesSpec


class InvariantsFileSpec(_Strict):
    invariants: tuple[InvariantSpec, ...] = ()
    escalations: tuple[EscalationSpec, ...] = ()


@dataclass(frozen=True)
class Answer:
    """What an invariant may inspect: the resolved values with derived facts and `modality`,
    the four rating categories, and the ids of every rule that fired."""

    values: Mapping[str, Any]
    ratings: Mapping[Modality, Category]
    fired: frozenset[str]


@dataclass(frozen=True)
class Invariant:
    id: str
    statement: str
    tests: tuple[Test, ...]
    hold: tuple[Test, ...]
    bounds: tuple[tuple[Modality, str, Category], ...]  # (modality, "at_least" | "at_most", category)
    notes: tuple[str, ...]
    sources: tuple[Citation, ...]
    covers: tuple[dict[str, Any], ...]
    outside: tuple[dict[str, Any], ...]

    def applies(self, values: Mapping[str, Any]) -> bool:
        return holds(self.tests, values)

    def breach(self, answer: Answer) -> str | None:
        """None if the answer satisfies this invariant (assuming it applies), else what failed."""
        for test in self.hold:
            if not test.holds(answer.values):
                return f"required {test.describe()}, but {test.field} is {_show(answer.values[test.field])}"
        for modality, bound, category in self.bounds:
            got = answer.ratings[modality]
            if (RANK[got] < RANK[category]) if bound == "at_least" else (RANK[got] > RANK[category]):
                return f"required {modality.value} rated {bound.replace('_', ' ')} {category.value}, but it is rated {got.value}"
        missing = [rule for rule in self.notes if rule not in answer.fired]
        if missing:
            return f"required {', '.join(missing)} in the answer, but {'it is' if len(missing) == 1 else 'they are'} missing"
        return None


@dataclass(frozen=True)
class Escalation:
    """Monotone safety along one field: each step moves toward more need for imaging."""

    id: str
    statement: str
    field: str
    steps: tuple[tuple[Any, Any], ...]
    sources: tuple[Citation, ...]
    covers: tuple[dict[str, Any], ...]
    outside: tuple[dict[str, Any], ...]

    def stands_low(self, value: Any) -> bool:
        """True if `value` is the `from` of some step (the case can be escalated along this field)."""
        return any(_same(value, low) for low, _ in self.steps)


@dataclass(frozen=True)
class InvariantSet:
    invariants: tuple[Invariant, ...]
    escalations: tuple[Escalation, ...]

    def breaches(self, answer: Answer) -> Iterable[tuple[Invariant, str]]:
        for invariant in self.invariants:
            if invariant.applies(answer.values):
                problem = invariant.breach(answer)
                if problem is not None:
                    yield invariant, problem


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple):
        return "[" + ", ".join(map(str, value)) + "]"
    return str(value)


def _same(a: Any, b: Any) -> bool:
    return bool(a == b and type(a) is type(b))


def _list_steps(values: tuple[Any, ...]) -> tuple[tuple[Any, Any], ...]:
    """Every (set, set plus one value) pair over a list field's values, as sorted tuples."""
    subsets = [tuple(sorted(c)) for size in range(len(values) + 1) for c in itertools.combinations(values, size)]
    return tuple((s, t) for s in subsets for t in subsets if len(t) == len(s) + 1 and set(s) < set(t))


_loaded: dict[tuple[str, str], InvariantSet] = {}


def load_invariants(knowledge: KnowledgeBase) -> InvariantSet:
    """The invariants of this rule base (cached by folder and digest); RuleFileError names file, id and key."""
    key = (str(knowledge.directory), knowledge.digest)
    found = _loaded.get(key)
    if found is None:
        found = _loaded[key] = _load(knowledge)
    return found


def _load(knowledge: KnowledgeBase) -> InvariantSet:
    spec: InvariantsFileSpec = check_schema(FILE, InvariantsFileSpec, read_rule_file(knowledge.directory, FILE))
    vocabulary = knowledge.vocabulary(output=True)
    outputs = {rule.id for rule in knowledge.rules if rule.kind in OUTPUT_KINDS}
    seen: set[str] = set()

    def citations(item_id: str, items: tuple[CitationSpec, ...]) -> tuple[Citation, ...]:
        out = []
        for i, item in enumerate(items):
            if item.source not in knowledge.sources:
                raise RuleFileError(FILE, f"unknown source '{item.source}'; add it to sources.yaml", rule=item_id, key=f"sources.{i}")
            props = knowledge.sources[item.source].propositions
            if props and item.locator not in props:
                raise RuleFileError(
                    FILE,
                    f"'{item.locator}' is not a proposition of '{item.source}'; valid: {', '.join(props)}",
                    rule=item_id,
                    key=f"sources.{i}",
                )
            out.append(cite(knowledge.sources, item.source, item.locator))
        return tuple(out)

    def unique(item_id: str) -> None:
        if item_id in seen:
            raise RuleFileError(FILE, "duplicate invariant id", rule=item_id, key="id")
        seen.add(item_id)

    def conditions(item_id: str, key: str, when: Mapping[str, Any]) -> tuple[Test, ...]:
        try:
            return parse(dict(when), vocabulary)
        except KeyError as error:
            raise RuleFileError(FILE, error.args[1], rule=item_id, key=f"{key}.{error.args[0]}") from None

    invariants = []
    for item in spec.invariants:
        unique(item.id)
        bounds = []
        for modality, bound in item.must.ratings.items():
            given = [(name, category) for name, category in (("at_least", bound.at_least), ("at_most", bound.at_most)) if category]
            if not given:
                raise RuleFileError(FILE, "a rating bound needs at_least or at_most", rule=item.id, key=f"must.ratings.{modality.value}")
            bounds += [(modality, name, category) for name, category in given]
        for rule in item.must.notes:
            if rule not in outputs:
                raise RuleFileError(
                    FILE, f"'{rule}' is not an active documentation, caution or question rule", rule=item.id, key="must.notes"
                )
        hold = conditions(item.id, "must.hold", item.must.hold)
        if not (hold or bounds or item.must.notes):
            raise RuleFileError(FILE, "'must' must require something: hold, ratings or notes", rule=item.id, key="must")
        invariants.append(
            Invariant(
                item.id,
                item.statement,
                conditions(item.id, "when", item.when),
                hold,
                tuple(bounds),
                item.must.notes,
                citations(item.id, item.sources),
                item.examples.covers,
                item.examples.outside,
            )
        )
    escalations = []
    for esc in spec.escalations:
        unique(esc.id)
        field = CASE_FIELDS.get(esc.field)
        if field is None:
            raise RuleFileError(FILE, f"unknown case field '{esc.field}'; valid: {', '.join(CASE_FIELDS)}", rule=esc.id, key="field")
        if esc.steps == "add":
            if not field.is_list:
                raise RuleFileError(FILE, f"'add' is for list fields; give [from, to] pairs for {esc.field}", rule=esc.id, key="steps")
            steps = _list_steps(field.values)
        else:
            if field.is_list:
                raise RuleFileError(FILE, f"{esc.field} is a list field: use steps: add", rule=esc.id, key="steps")
            for pair in esc.steps:
                for value in pair:
                    if not any(_same(value, v) for v in field.values):
                        shown = ", ".join(_show(v) for v in field.values)
                        raise RuleFileError(FILE, f"'{value}' is not a value of {esc.field}; valid: {shown}", rule=esc.id, key="steps")
            steps = tuple((low, high) for low, high in esc.steps)
        escalations.append(
            Escalation(esc.id, esc.statement, esc.field, steps, citations(esc.id, esc.sources), esc.examples.covers, esc.examples.outside)
        )
    return InvariantSet(tuple(invariants), tuple(escalations))


# ---- checking answers (used by the audit and the property tests) -------------------------


def answer_of(evaluation: Evaluation) -> Answer:
    return Answer(evaluation.values, {m: r.category for m, r in evaluation.ratings.items()}, frozenset(evaluation.fired))


def weight(case: Mapping[str, Any]) -> int:
    """How much a case departs from the plainest one: variances, true flags and named values
    count; the audit shows the counterexample of least weight (then lowest index)."""
    return sum(len(v) if isinstance(v, tuple | list) else v is True for v in case.values())


def minimal_case(knowledge: KnowledgeBase, case: Mapping[str, Any]) -> dict[str, Any]:
    """The case with every field left out that resolution would fill with the same value."""
    from guidance_rules.errors import CaseError

    target = resolve(case, knowledge).values
    out = dict(case)
    for name in list(case):
        if name in ("site", "injectate"):
            continue
        trial = {k: v for k, v in out.items() if k != name}
        try:
            if resolve(trial, knowledge).values == target:
                out = trial
        except CaseError:
            continue
    return as_json_case(out)


def invariant_findings(recommender: Recommender, invariants: InvariantSet, results: list[SpaceResult], quick: bool) -> list[Finding]:
    """One error per broken invariant, with its count and smallest counterexample; a warning for
    an invariant that covers no enumerated case (it proves nothing there)."""

    findings = []
    for invariant in invariants.invariants:
        breaches = [r.breaches[invariant.id] for r in results if invariant.id in r.breaches]
        count = sum(b.count for b in breaches)
        covered = sum(r.covered.get(invariant.id, 0) for r in results)
        if count:
            smallest = min((item for b in breaches for item in b.smallest), key=lambda item: item[0])
            _, case, problem = smallest
            findings.append(
                Finding(
                    "error",
                    "invariant",
                    f"{invariant.id} fails on {count:,} of {covered:,} cases it covers: {invariant.statement} "
                    f"Here {problem}. The smallest counterexample is shown.",
                    minimal_case(recommender.knowledge, case),
                )
            )
        elif not covered and not quick:
            findings.append(Finding("warning", "invariant-vacuous", f"{invariant.id} covers no case in the enumerated spaces"))
    return findings


def invariant_example_findings(recommender: Recommender, invariants: InvariantSet) -> list[Finding]:
    """Each invariant's own examples: `covers` cases are covered and satisfy it, `outside` are not covered."""
    from pydantic import ValidationError

    from guidance_rules.errors import EngineError

    findings = []
    for invariant in invariants.invariants:
        for expect, cases in (("covers", invariant.covers), ("outside", invariant.outside)):
            for case in cases:
                try:
                    evaluation = recommender.evaluate(recommender.resolve(case).values)
                except (ValidationError, EngineError) as error:
                    findings.append(Finding("error", "invariant-example", f"{invariant.id}: example {case} fails: {error}", case))
                    continue
                applies = invariant.applies(evaluation.values)
                if applies != (expect == "covers"):
                    verb = "does not cover" if expect == "covers" else "covers"
                    findings.append(Finding("error", "invariant-example", f"{invariant.id} {verb} its own '{expect}' example", case))
                elif applies and (problem := invariant.breach(answer_of(evaluation))):
                    findings.append(Finding("error", "invariant", f"{invariant.id} fails on its own example: {problem}", case))
    for escalation in invariants.escalations:
        for expect, cases in (("covers", escalation.covers), ("outside", escalation.outside)):
            for case in cases:
                try:
                    value = recommender.resolve(case).values[escalation.field]
                except ValidationError as error:
                    findings.append(Finding("error", "invariant-example", f"{escalation.id}: example {case} fails: {error}", case))
                    continue
                if escalation.stands_low(value) != (expect == "covers"):
                    verb = "does not cover" if expect == "covers" else "covers"
                    findings.append(Finding("error", "invariant-example", f"{escalation.id} {verb} its own '{expect}' example", case))
    return findings
