"""Building the Recommendation: the reasoning chain, ratings, notes and evidence.

This is where a fired rule is *explained*: each step names the rule, states its
conclusion, shows the case facts it read with their values, and cites its sources.
Every part is immutable, so identical parts (the same rule reading the same values,
a rule's note, a site's evidence) are built once and shared between answers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, TypeVar

from pydantic import BaseModel

from guidance_rules._sync import ForkSafeLock
from guidance_rules.engine.policy import RatingResult
from guidance_rules.model import (
    Assumption,
    Category,
    Citation,
    Evidence,
    Figure,
    FrozenMap,
    Modality,
    Note,
    Rating,
    Ratings,
    Reason,
    Recommendation,
    RulesetInfo,
    Step,
    Summary,
)
from guidance_rules.rulebase.conditions import holds
from guidance_rules.rulebase.domain import KnowledgeBase, Rule, TieBreak
from guidance_rules.rulebase.load import cite, in_scope, scope_of
from guidance_rules.rulebase.resolve import Resolution
from guidance_rules.rulebase.schemas import EvidenceSpec

M = TypeVar("M", bound=BaseModel)
TRUE = frozenset({True})
K = TypeVar("K")
V = TypeVar("V")
PART_LIMIT = 100_000


def make(cls: type[M], **values: Any) -> M:
    """Build a model from already-valid values without re-validating (a lean model_construct)."""
    obj = cls.__new__(cls)
    object.__setattr__(obj, "__dict__", values)
    object.__setattr__(obj, "__pydantic_fields_set__", set(values))
    object.__setattr__(obj, "__pydantic_extra__", None)
    object.__setattr__(obj, "__pydantic_private__", None)
    return obj


@dataclass(frozen=True)
class Evaluation:
    """What the engine concluded for one resolved case, before it is dressed as output."""

    values: dict[str, Any]  # resolved case values plus every derived fact and the modality
    chain: list[Rule]  # derivation and rating rules that fired, in stratum order
    ratings: dict[Modality, RatingResult]
    modality: Modality
    outputs: list[Rule]

    @property
    def fired(self) -> list[str]:
        return [rule.id for rule in (*self.chain, *self.outputs)]


class Parts:
    """Immutable pieces of recommendations for one rule base, built once and shared."""

    def __init__(self, knowledge: KnowledgeBase) -> None:
        self.knowledge = knowledge
        self._lock = ForkSafeLock(reentrant=True)
        self._steps: dict[tuple[Any, ...], Step] = {}
        self._assumptions: dict[tuple[str, Any, str], Assumption] = {}
        self._ratings: dict[tuple[RatingResult, ...], Ratings] = {}
        self._summaries: dict[tuple[Any, ...], Summary] = {}
        self._explanations: dict[tuple[Any, ...], Reason] = {}
        self._notes = {rule.id: make(Note, rule=rule.id, text=rule.text or "", sources=rule.sources) for rule in knowledge.rules}
        self._evidence: dict[tuple[str, tuple[bool, ...]], tuple[Evidence, ...]] = {}
        policy = knowledge.policy
        self._cite_fields = {rule.id: self._fields(rule.sources, bool(rule.figures)) for rule in knowledge.rules}
        # (the values a rule reads, the values its citations depend on) of a case, by rule: made once
        self._getters = {rule.id: (values_of(rule.reads), values_of(self._cite_fields[rule.id])) for rule in knowledge.rules}
        tie_sources = tuple(c for tie in policy.tie_breaks for c in tie.sources)
        self._policy_fields = self._fields((*policy.sources, *tie_sources), any(t.figures for t in policy.tie_breaks))
        self._summary_fields = self._fields((), bool(policy.summary_points))
        # The rules that use each derived fact (read it as true): a fact none of them used, because
        # something else the chain found stands against them, is a reason the answer overrules.
        self._consumers = {
            fact: tuple(
                r
                for r in knowledge.rules
                if not r.is_output and any(t.field == fact and t.values == TRUE and not t.negated for t in r.tests)
            )
            for fact in knowledge.facts
        }
        self._ruleset = make(RulesetInfo, version=knowledge.version, digest=knowledge.digest)
        self._fragments: dict[int, tuple[BaseModel, str]] = {}  # id(part) -> (part, its JSON); the part is held, so ids stay unique

    def _shared(self, table: dict[K, V], key: K, build: Callable[[], V]) -> V:
        found = table.get(key)
        if found is None:
            found = build()
            with self._lock:
                if len(table) >= PART_LIMIT:
                    table.clear()
                table[key] = found
        return found

    # -- citations chosen for the case -----------------------------------------------------------

    def _fields(self, citations: tuple[Citation, ...], figures: bool) -> tuple[str, ...]:
        """The case fields that decide which of these citations (and site figures) fit a case."""
        fields = {test.field for c in citations for tests in scope_of(self.knowledge, c) or () for test in tests}
        if figures:
            fields.add("site")
            fields.update(t.field for site in self.knowledge.sites.values() for tests in site.evidence_tests for t in tests)
        return tuple(sorted(fields))

    def cited(self, citations: tuple[Citation, ...], values: Mapping[str, Any]) -> tuple[Citation, ...]:
        """The citations that are evidence for this case: a study scoped to some sites (sources.yaml)
        is cited only at those sites."""
        return tuple(c for c in citations if in_scope(self.knowledge, c, values))

    def explained(self, rule: Rule, values: Mapping[str, Any]) -> Reason:
        """A rule's conclusion and citations for this case, kept per rule and the values its
        citations depend on (most cases share them)."""
        key = (rule.id, self._getters[rule.id][1](values))
        found = self._explanations.get(key)
        if found is None:

            def build() -> Reason:
                conclusion, sources = self._explained(rule.conclusion, rule.sources, rule.figures, values)
                return make(Reason, rule=rule.id, conclusion=conclusion, sources=sources)

            found = self._shared(self._explanations, key, build)
        return found

    def figures(self, points: tuple[str, ...], values: Mapping[str, Any]) -> tuple[EvidenceSpec, ...]:
        """The case's site's own figures for these points of reasoning, in the site record's order."""
        site = self.knowledge.sites.get(values["site"])
        if site is None or not points:
            return ()
        return tuple(
            row
            for row, tests in zip(site.evidence, site.evidence_tests, strict=True)
            if not set(row.points).isdisjoint(points) and holds(tests, values)
        )

    def _explained(
        self, conclusion: str, citations: tuple[Citation, ...], points: tuple[str, ...], values: Mapping[str, Any]
    ) -> tuple[str, tuple[Citation, ...]]:
        """A conclusion with the site's own figure for its point, and the citations that fit the case."""
        rows = self.figures(points, values)
        sources = self.cited(citations, values)
        if not rows:
            return conclusion, sources
        site = self.knowledge.sites[values["site"]]
        shown = "; ".join(figure_text(row) for row in rows)
        own = tuple(cite(self.knowledge.sources, row.source, row.locator) for row in rows)
        return f"{conclusion} Here ({site.title}): {shown}.", _unique((*sources, *own))

    # -- steps -----------------------------------------------------------------------------------

    def _context(self, rule: Rule, values: Mapping[str, Any]) -> tuple[Any, ...]:
        reads, cites = self._getters[rule.id]
        return (rule.id, reads(values), cites(values))

    def step(self, rule: Rule, values: Mapping[str, Any], overridden_by: str | None = None) -> Step:
        key = (*self._context(rule, values), overridden_by)
        found = self._steps.get(key)
        if found is not None:
            return found

        def build() -> Step:
            reason = self.explained(rule, values)
            conclusion, sources = reason.conclusion, reason.sources
            if overridden_by is not None:
                conclusion = _marked(rule, overridden_by, conclusion)
            facts = FrozenMap(zip(rule.reads, [values[f] for f in rule.reads], strict=True))
            return make(Step, rule=rule.id, conclusion=conclusion, facts=facts, sources=sources, reasons=(), overridden_by=overridden_by)

        return self._shared(self._steps, key, build)

    def group(
        self, fact: str, rules: list[Rule], values: Mapping[str, Any], overruled_by: str | None = None, then: str | None = None
    ) -> Step:
        """One step for several reasons that derive the same fact, each listed with its sources;
        `then`: a fact that follows from this one alone, its rule listed last."""
        key = ("group", fact, overruled_by, then, *(self._context(rule, values) for rule in rules))

        def build() -> Step:
            reasons = tuple([self.explained(r, values) for r in rules])
            facts = FrozenMap({f: values[f] for r in rules for f in r.reads})
            sources = _unique(tuple(c for reason in reasons for c in reason.sources))
            count = len(reasons) - (then is not None)
            conclusion = f"{self.knowledge.facts[fact].rstrip('.')}{f' ({count} reasons)' if count > 1 else ''}"
            if then is not None:
                follows = self.knowledge.facts[then]
                conclusion += f", so {follows[0].lower()}{follows[1:].rstrip('.')}"
            conclusion += "."
            if overruled_by is not None:
                conclusion = _marked(rules[0], overruled_by, conclusion)
            return make(
                Step, rule=rules[0].id, conclusion=conclusion, facts=facts, sources=sources, reasons=reasons, overridden_by=overruled_by
            )

        return self._shared(self._steps, key, build)

    def reasoning(self, evaluation: Evaluation) -> tuple[Step, ...]:
        """The chain as the reader sees it: reasons for one derived fact grouped at the place of the
        last of them (after everything they read), overridden ratings marked, a reason the answer
        overrules marked and placed after the step that overrules it, the policy last."""
        values, chain = evaluation.values, evaluation.chain
        fired = {rule.id for rule in chain}
        overridden: dict[str, str] = {}
        for rule in chain:
            for other in rule.overrides:
                if other in fired:
                    overridden.setdefault(other, rule.id)
        groups: dict[str, list[Rule]] = {}
        for rule in chain:
            if rule.derive is not None:
                groups.setdefault(rule.derive, []).append(rule)
        overruled = self.overruled(chain, values, groups)
        follows = _consequences(groups, overruled)
        steps: list[Step] = []
        placed: set[str] = set()
        waiting: dict[str, list[Step]] = {}  # rule id -> overruled steps shown after that rule's step
        for rule in chain:
            if rule.derive is None:
                members, step = [rule], self.step(rule, values, overridden.get(rule.id))
            elif groups[rule.derive][-1] is rule and rule.derive not in follows.values():
                members, by, then = groups[rule.derive], overruled.get(rule.derive), follows.get(rule.derive)
                if then is not None:
                    members = [*members, *groups[then]]
                    step = self.group(rule.derive, members, values, by, then)
                else:
                    step = self.step(rule, values, by) if len(members) == 1 else self.group(rule.derive, members, values, by)
                if by is not None and by not in placed:
                    waiting.setdefault(by, []).append(step)
                    continue
            else:
                continue
            steps.append(step)
            for member in members:
                placed.add(member.id)
                steps.extend(waiting.pop(member.id, ()))
        steps.extend(step for held in waiting.values() for step in held)
        steps.append(self.policy_step(values, evaluation.ratings, evaluation.modality))
        return tuple(steps)

    def overruled(self, chain: list[Rule], values: Mapping[str, Any], groups: Mapping[str, list[Rule]]) -> dict[str, str]:
        """Derived facts the answer overrules, each with the fired rule that overrules it: no rule
        that reads the fact as true fired, and one of them failed on something another fired rule
        found (a derived fact it needs false, or a case value another rule fired on). "Palpation
        can be accurate" at a knee is overruled by a cell-based product; a fact merely unused (ultrasound
        fits, where landmarks are justified) is not."""
        fired = {rule.id for rule in chain}
        found: dict[str, str] = {}
        for fact, members in groups.items():
            consumers = self._consumers.get(fact, ())
            if not consumers or any(c.id in fired for c in consumers):
                continue
            against: set[str] = set()
            for consumer in consumers:
                for test in consumer.tests:
                    if test.holds(values):
                        continue
                    if test.field in self.knowledge.facts:
                        against.update(r.id for r in groups.get(test.field, ()) if values[test.field] is True)
                    else:
                        against.update(
                            r.id
                            for r in chain
                            if r not in members and any(t.field == test.field and not t.negated and t.holds(values) for t in r.tests)
                        )
            first = next((rule.id for rule in chain if rule.id in against), None)
            if first is not None:
                found[fact] = first
        return found

    def ties(self, ratings: Mapping[Modality, RatingResult], modality: Modality) -> tuple[TieBreak, ...]:
        """The tie-breaks that decided this case: the chosen modality over another also rated usually appropriate."""
        best = Category.USUALLY_APPROPRIATE
        return tuple(
            tie for tie in self.knowledge.policy.tie_breaks if tie.prefer is modality and any(ratings[o].category is best for o in tie.over)
        )

    def policy_step(self, values: Mapping[str, Any], ratings: Mapping[Modality, RatingResult], modality: Modality) -> Step:
        policy = self.knowledge.policy
        key = (policy.id, modality, *(ratings[m].category for m in policy.preference), *(values[f] for f in self._policy_fields))

        def build() -> Step:
            conclusion = f"Recommend {modality.value}: {policy.conclusion[0].lower()}{policy.conclusion[1:]}"
            sources = self.cited(policy.sources, values)
            for tie in self.ties(ratings, modality):
                others = [o.value for o in tie.over if ratings[o].category is Category.USUALLY_APPROPRIATE]
                reason, cited = self._explained(tie.reason, tie.sources, tie.figures, values)
                also = f"{' and '.join(others).capitalize()} is also usually appropriate"
                conclusion += f" {also}; {modality.value} goes first: {reason[0].lower()}{reason[1:]}"
                sources = _unique((*sources, *cited))
            facts = FrozenMap({m.value: ratings[m].category.value for m in policy.preference})
            return make(Step, rule=policy.id, conclusion=conclusion, facts=facts, sources=sources, reasons=(), overridden_by=None)

        return self._shared(self._steps, key, build)

    # -- the rest of the answer ------------------------------------------------------------------

    def assumption(self, item: tuple[str, Any, str]) -> Assumption:
        return self._shared(self._assumptions, item, lambda: make(Assumption, field=item[0], value=item[1], origin=item[2]))

    def ratings(self, ratings: Mapping[Modality, RatingResult]) -> Ratings:
        key = tuple(ratings[m] for m in Modality)
        return self._shared(
            self._ratings,
            key,
            lambda: make(
                Ratings, **{m.value: make(Rating, category=r.category, rules=r.rules) for m, r in zip(Modality, key, strict=True)}
            ),
        )

    def evidence(self, values: Mapping[str, Any]) -> tuple[Evidence, ...]:
        """The site's evidence rows that bear on this case (a knee path's row only for that path)."""
        site = self.knowledge.sites.get(values["site"])
        if site is None:
            return ()
        mask = tuple(holds(tests, values) for tests in site.evidence_tests)
        return self._shared(
            self._evidence,
            (site.key, mask),
            lambda: tuple(
                make(
                    Evidence,
                    site=site.key,
                    measure=e.measure,
                    ultrasound=e.ultrasound,
                    landmark=e.landmark,
                    note=e.note,
                    source=cite(self.knowledge.sources, e.source, e.locator),
                )
                for e, keep in zip(site.evidence, mask, strict=True)
                if keep
            ),
        )

    def summary(self, evaluation: Evaluation) -> Summary:
        """The bottom line: the modality, the decisive reason, the site's key figure (the decisive
        rule's own figure, else the first for the policy's summary points), refer cautions."""
        values, ratings, modality = evaluation.values, evaluation.ratings, evaluation.modality
        decisive = ratings[modality].rules
        ties = self.ties(ratings, modality)
        refer = tuple(rule.id for rule in evaluation.outputs if rule.bottom_line)
        key = (modality, decisive, tuple(id(t) for t in ties), refer, *(values[f] for f in self._summary_fields))

        def build() -> Summary:
            rule = self.knowledge.rule(decisive[0])
            reason = rule.conclusion + "".join(f" {t.reason}" for t in ties)
            points = (*(p for r in decisive for p in self.knowledge.rule(r).figures), *self.knowledge.policy.summary_points)
            rows = [row for point in points for row in self.figures((point,), values)]
            figure = None
            if rows:
                source = cite(self.knowledge.sources, rows[0].source, rows[0].locator)
                figure = make(Figure, text=f"{self.knowledge.sites[values['site']].title}: {figure_text(rows[0])}", source=source)
            cautions = tuple(self.knowledge.rule(r).text or "" for r in refer)
            text = " ".join(
                [reason, *([f"Key figure: {figure.text} ({figure.source.source}, {figure.source.locator})."] if figure else []), *cautions]
            )
            return make(Summary, modality=modality, text=text, reason=reason, rules=decisive, figure=figure, cautions=cautions)

        return self._shared(self._summaries, key, build)

    def build(self, resolution: Resolution, evaluation: Evaluation) -> Recommendation:
        notes: dict[str, list[Note]] = {"documentation": [], "caution": [], "question": []}
        for rule in evaluation.outputs:
            notes[rule.kind].append(self._notes[rule.id])
        return make(
            Recommendation,
            summary=self.summary(evaluation),
            modality=evaluation.modality,
            ratings=self.ratings(evaluation.ratings),
            reasoning=self.reasoning(evaluation),
            assumptions=tuple(self.assumption(item) for item in resolution.assumptions),
            documentation=tuple(notes["documentation"]),
            cautions=tuple(notes["caution"]),
            questions=tuple(notes["question"]),
            evidence=self.evidence(evaluation.values),
            ruleset=self._ruleset,
        )

    def fragment(self, part: BaseModel) -> str:
        """A shared part's JSON text, serialised once (pydantic's own serialiser, so identical)."""
        found = self._fragments.get(id(part))
        if found is not None and found[0] is part:
            return found[1]
        text = part.model_dump_json()
        with self._lock:
            if len(self._fragments) >= PART_LIMIT:
                self._fragments.clear()
            self._fragments[id(part)] = (part, text)
        return text

    def json(self, rec: Recommendation) -> str:
        """`rec.model_dump_json()`, byte for byte, joined from the JSON of its shared parts (about
        a third of the time: most parts recur across answers)."""
        frag = self.fragment

        def items(parts: tuple[BaseModel, ...]) -> str:
            return "[" + ",".join([frag(part) for part in parts]) + "]"

        return (
            f'{{"summary":{frag(rec.summary)},"modality":"{rec.modality.value}","ratings":{frag(rec.ratings)},"reasoning":{items(rec.reasoning)},'
            f'"assumptions":{items(rec.assumptions)},"documentation":{items(rec.documentation)},"cautions":{items(rec.cautions)},'
            f'"questions":{items(rec.questions)},"evidence":{items(rec.evidence)},"ruleset":{frag(rec.ruleset)}}}'
        )


def _consequences(groups: Mapping[str, list[Rule]], overruled: Mapping[str, str]) -> dict[str, str]:
    """Facts that follow from one other fact alone, by one rule (imaging is indicated because
    landmarks are unreliable), keyed by that fact: the reader sees them as the end of its step,
    not as a step of their own, which shortens the chain without losing a rule (issue 19)."""
    found: dict[str, str] = {}
    for fact, members in groups.items():
        reads = members[0].reads
        if len(members) == 1 and len(reads) == 1 and reads[0] in groups and fact not in overruled and reads[0] not in overruled:
            found.setdefault(reads[0], fact)
    return {fact: then for fact, then in found.items() if fact not in found.values() and then not in found}


def _marked(rule: Rule, by: str, conclusion: str) -> str:
    """A step the answer sets aside: a rating another rule overrides, a reason another overrules."""
    verb = "Overruled" if rule.derive is not None else "Overridden"
    return f"{verb} by {by}: {conclusion[0].lower()}{conclusion[1:]}"


def values_of(fields: tuple[str, ...]) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    """A function giving the values of `fields` of a mapping as a tuple (`itemgetter`, always a tuple)."""
    if len(fields) == 1:
        (name,) = fields
        return lambda values: (values[name],)
    return itemgetter(*fields) if fields else (lambda values: ())


def figure_text(row: EvidenceSpec) -> str:
    """A site figure in one phrase: what was measured, and the figures for each method."""
    shown = [f"ultrasound {row.ultrasound}" if row.ultrasound else "", f"landmark {row.landmark}" if row.landmark else ""]
    values = ", ".join(part for part in shown if part)
    if not values:
        return f"{row.measure}: {row.note}" if row.note else row.measure
    return f"{row.measure}: {values}"


def _unique(citations: tuple[Citation, ...]) -> tuple[Citation, ...]:
    """Each citation once, in order (keyed by its plain values: hashing the models is slower)."""
    seen: dict[tuple[str, str], Citation] = {}
    for c in citations:
        seen.setdefault((c.source, c.locator), c)
    return tuple(seen.values())
