"""Building the Recommendation: the reasoning chain, ratings, notes and evidence.

This is where a fired rule is *explained*: each step names the rule, states its
conclusion, shows the case facts it read with their values, and cites its sources.
Every part is immutable, so identical parts (the same rule reading the same values,
a rule's note, a site's evidence) are built once and shared between answers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel

from guidance_rules._sync import ForkSafeLock
from guidance_rules.engine.policy import RatingResult
from guidance_rules.model import Assumption, Evidence, FrozenMap, Modality, Note, Rating, Ratings, Recommendation, RulesetInfo, Step
from guidance_rules.rulebase.load import KnowledgeBase, Rule, cite
from guidance_rules.rulebase.resolve import Resolution

M = TypeVar("M", bound=BaseModel)
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
        self._notes = {rule.id: make(Note, rule=rule.id, text=rule.text or "", sources=rule.sources) for rule in knowledge.rules}
        self._evidence = {
            key: tuple(
                make(
                    Evidence,
                    site=key,
                    measure=e.measure,
                    ultrasound=e.ultrasound,
                    landmark=e.landmark,
                    note=e.note,
                    source=cite(knowledge.sources, e.source, e.locator),
                )
                for e in site.evidence
            )
            for key, site in knowledge.sites.items()
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

    def step(self, rule: Rule, values: Mapping[str, Any]) -> Step:
        read = tuple([values[f] for f in rule.reads])
        found = self._steps.get((rule.id, read))
        if found is not None:
            return found
        return self._shared(
            self._steps,
            (rule.id, read),
            lambda: make(
                Step, rule=rule.id, conclusion=rule.conclusion, facts=FrozenMap(zip(rule.reads, read, strict=True)), sources=rule.sources
            ),
        )

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

    def build(self, resolution: Resolution, evaluation: Evaluation) -> Recommendation:
        values, chain, ratings, modality, outputs = (
            evaluation.values,
            evaluation.chain,
            evaluation.ratings,
            evaluation.modality,
            evaluation.outputs,
        )
        policy = self.knowledge.policy
        steps = [self.step(rule, values) for rule in chain]
        steps.append(
            self._shared(
                self._steps,
                (policy.id, modality, *(ratings[m].category for m in policy.preference)),
                lambda: make(
                    Step,
                    rule=policy.id,
                    conclusion=f"Recommend {modality.value}: {policy.conclusion[0].lower()}{policy.conclusion[1:]}",
                    facts=FrozenMap({m.value: ratings[m].category.value for m in policy.preference}),
                    sources=policy.sources,
                ),
            )
        )
        notes: dict[str, list[Note]] = {"documentation": [], "caution": [], "question": []}
        for rule in outputs:
            notes[rule.kind].append(self._notes[rule.id])
        assumptions = tuple(self.assumption(item) for item in resolution.assumptions)
        return make(
            Recommendation,
            modality=modality,
            ratings=self.ratings(ratings),
            reasoning=tuple(steps),
            assumptions=assumptions,
            documentation=tuple(notes["documentation"]),
            cautions=tuple(notes["caution"]),
            questions=tuple(notes["question"]),
            evidence=self._evidence.get(values["site"], ()),
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
            f'{{"modality":"{rec.modality.value}","ratings":{frag(rec.ratings)},"reasoning":{items(rec.reasoning)},'
            f'"assumptions":{items(rec.assumptions)},"documentation":{items(rec.documentation)},"cautions":{items(rec.cautions)},'
            f'"questions":{items(rec.questions)},"evidence":{items(rec.evidence)},"ruleset":{frag(rec.ruleset)}}}'
        )
