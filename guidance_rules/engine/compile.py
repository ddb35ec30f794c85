"""Compiling the rule base into one durable-rules ruleset, in strata.

Derived facts are negated in conditions (``landmark_unreliable: false``), which is only
sound once every rule that could derive them has had its chance. So rules are placed in
strata: a derivation rule sits one stratum above the facts it reads; rating rules follow
all derivations; output rules (documentation, cautions, questions) come last, after the
modality is chosen. Each stratum is asserted into the engine as facts tagged with a part
number, and every rule matches only facts of its own part.

Parts exist because durable-rules has fixed capacities (`rulebase.limits`, read from its C
source): matching walks the alpha network with a stack of 64 entries; each `$or` adds a join
node below every one of its branches, and one node holds at most 127 joins, 511 tests and 255
rules; a fact holds at most 255 properties. A stratum of many rules with alike conditions (70
cautions on the chosen modality) overflows them. So a stratum's rules are packed into parts,
each with its own tag and therefore its own sub-network, and `_Network` builds each part's
alpha network as durable-rules will (sharing a test node exactly where it does) to check it
fits: the deepest stack any fact can need, assuming every test matches except that tests of one
property for different values exclude each other, must stay within the limit, and so must every
node's lists. A fact for a part carries only the values its rules read. The shipped rule base
fits one part per stratum; the limits no grouping can change are checked by the loader.
"""

from __future__ import annotations

import functools
import itertools
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from guidance_rules.errors import EngineError, RuleFileError
from guidance_rules.rulebase import limits
from guidance_rules.rulebase.conditions import Test
from guidance_rules.rulebase.domain import KnowledgeBase, Rule
from guidance_rules.rulebase.load import derivation_levels

STRATUM_KEY = "stratum"


@dataclass(frozen=True)
class Part:
    """Rules of one stratum that the engine matches against one fact, tagged `tag`."""

    tag: int
    rules: tuple[Rule, ...]
    keys: tuple[str, ...]  # the flattened snapshot keys its rules read

    @functools.cached_property
    def encode(self) -> FactEncoder:
        """The JSON text of this part's fact, from fragments built once (`FactEncoder`)."""
        return FactEncoder(self.keys)


@dataclass(frozen=True)
class Stratum:
    number: int
    rules: tuple[Rule, ...]
    keys: tuple[str, ...]  # the flattened snapshot keys its rules read
    produces: tuple[str, ...]  # derived facts completed by this stratum
    parts: tuple[Part, ...]
    fields: tuple[str, ...] = ()  # the resolved fields its rules read: their values decide what fires


@dataclass(frozen=True)
class Compiled:
    knowledge: KnowledgeBase
    derive: tuple[Stratum, ...]
    rate: Stratum
    output: Stratum
    ruleset_json: str
    underived: tuple[str, ...]  # declared facts no active rule derives: false from the start

    @property
    def strata(self) -> tuple[Stratum, ...]:
        return (*self.derive, self.rate, self.output)

    @property
    def parts(self) -> int:
        """Facts one case asserts: one per part of every stratum."""
        return sum(len(s.parts) for s in self.strata)


def list_key(field: str, value: Any) -> str:
    """Snapshot key for "list field includes value" (the engine matches scalars only)."""
    return f"{field}__{value}"


def keys_for(test: Test) -> tuple[str, ...]:
    if test.is_list:
        return tuple(list_key(test.field, v) for v in sorted(test.values))
    return (test.field,)


@functools.lru_cache(maxsize=256)
def _plan(keys: tuple[str, ...]) -> tuple[tuple[str, str, str | None], ...]:
    """For each key: (key, field, list item), the item None for a scalar field."""
    plan: list[tuple[str, str, str | None]] = []
    for key in keys:
        field, _, item = key.partition("__")
        plan.append((key, field, item or None))
    return tuple(plan)


def flatten(values: Mapping[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    """Project resolved values onto the keys one stratum reads, splitting list fields into flags."""
    return {key: values[field] if item is None else item in values[field] for key, field, item in _plan(keys)}


FRAGMENTS_PER_KEY = 256  # text values whose fragment one key keeps (the vocabulary is far smaller)


class FactEncoder:
    """A part's fact as JSON text, the members of `flatten(values, keys)` without the braces,
    joined from fragments made once per key and value (`"depth":"deep"`, `"palpable":true`,
    `"anatomy_variance__obesity":false`) instead of building a dict and encoding it per case.
    Each fragment is `json.dumps`'s own text for that key and value, so the text is the same
    (a test compares them); a value that is neither a bool nor a str is encoded every time."""

    def __init__(self, keys: tuple[str, ...]) -> None:
        self.keys = keys
        self._plan: list[tuple[str, str | None, tuple[str, str], dict[str, str]]] = []
        for key, field, item in _plan(keys):
            name = json.dumps(key)
            self._plan.append((field, item, (f"{name}:false", f"{name}:true"), {}))

    def __call__(self, values: Mapping[str, Any]) -> str:
        out = []
        for field, item, flags, texts in self._plan:
            value = values[field]
            if item is not None:
                out.append(flags[item in value])
            elif value is True or value is False:
                out.append(flags[value])
            else:
                text = texts.get(value) if value.__class__ is str else None
                if text is None:
                    text = self._fragment(field, flags[0], value, texts)
                out.append(text)
        return ",".join(out)

    @staticmethod
    def _fragment(field: str, false_text: str, value: Any, texts: dict[str, str]) -> str:
        try:
            text = false_text[: -len("false")] + json.dumps(value, separators=(",", ":"))
        except (TypeError, ValueError) as error:
            raise EngineError(f"{field}: {value!r} cannot be given to the engine ({error})") from None
        if value.__class__ is str and len(texts) < FRAGMENTS_PER_KEY:
            texts[value] = text
        return text


def _expression(test: Test) -> dict[str, Any]:
    """One test as a durable-rules JSON expression."""
    parts: list[dict[str, Any]]
    if test.is_list:
        parts = [{list_key(test.field, v): not test.negated} for v in sorted(test.values)]
        return parts[0] if len(parts) == 1 else {("$and" if test.negated else "$or"): parts}
    ordered = sorted(test.values, key=str)
    if test.negated:
        parts = [{"$neq": {test.field: v}} for v in ordered]
        return parts[0] if len(parts) == 1 else {"$and": parts}
    parts = [{test.field: v} for v in ordered]
    return parts[0] if len(parts) == 1 else {"$or": parts}


def _condition(rule: Rule, tag: int) -> dict[str, Any]:
    clauses = [{STRATUM_KEY: tag}, *(_expression(t) for t in rule.tests)]
    return {"$and": clauses} if len(clauses) > 1 else clauses[0]


def _keys(rules: list[Rule]) -> tuple[str, ...]:
    return tuple(sorted({key for rule in rules for test in rule.tests for key in keys_for(test)}))


def _stratum(number: int, rules: list[Rule], tags: Iterator[int]) -> Stratum:
    produces = sorted({rule.derive for rule in rules if rule.derive})
    parts = tuple(Part(next(tags), tuple(group), _keys(group)) for group in _pack(rules))
    fields = tuple(sorted({test.field for rule in rules for test in rule.tests}))
    return Stratum(number, tuple(rules), _keys(rules), tuple(produces), parts, fields)


def compile_rules(knowledge: KnowledgeBase) -> Compiled:
    levels = derivation_levels(knowledge.rules, knowledge.facts)
    top = max(levels.values(), default=0)
    tags = itertools.count(1)
    derive = tuple(_stratum(n, [r for r in knowledge.rules if levels.get(r.id) == n], tags) for n in range(1, top + 1))
    rate = _stratum(top + 1, [r for r in knowledge.rules if r.kind == "rate"], tags)
    output = _stratum(top + 2, [r for r in knowledge.rules if r.is_output], tags)
    parts = [part for stratum in (*derive, rate, output) for part in stratum.parts]
    if len(parts) > limits.MAX_TESTS_PER_NODE:  # every part's tag is one test below the network's root
        raise RuleFileError(
            "ruleset.yaml",
            f"the active rules need {len(parts)} engine parts (groups of rules durable-rules can match against one fact); "
            f"it holds at most {limits.MAX_TESTS_PER_NODE}: retire rules or give rules with one conclusion one condition",
            key="rule_files",
        )
    underived = tuple(sorted(set(knowledge.facts) - {f for s in derive for f in s.produces}))
    ruleset = {rule.id: {"all": [{"m": _condition(rule, part.tag)}]} for part in parts for rule in part.rules}
    return Compiled(knowledge, derive, rate, output, json.dumps(ruleset, sort_keys=True), underived)


def _pack(rules: list[Rule]) -> list[list[Rule]]:
    """Rules in file order, grouped greedily into parts that each fit the engine's capacities."""
    groups: list[list[Rule]] = []
    network = _Network()
    for rule in rules:
        if groups and network.add(rule):
            groups[-1].append(rule)
            continue
        if groups:
            network = _Network()
        if not network.add(rule):
            raise RuleFileError(
                rule.file,
                f"this rule's condition alone needs a match stack of {network.depth} (or more than "
                f"{limits.MAX_JOINS_PER_NODE} joins below one test); durable-rules allows {limits.MAX_MATCH_STACK}: split the rule",
                rule=rule.id,
                key="when",
            )
        groups.append([rule])
    return groups


class _Node:
    """An alpha node as durable-rules builds it (rete.c `findAlpha`, `linkAlpha`, `createAlpha`)."""

    __slots__ = ("depth", "joins", "op", "prop", "rules", "tests")

    def __init__(self, prop: str, op: str) -> None:
        self.prop, self.op = prop, op
        self.tests: dict[tuple[str, str, str], _Node] = {}  # shared by (property, operator, value)
        self.joins: list[_Node] = []  # the join node of each `$or` one of whose branches this is
        self.rules = 0  # rules whose condition ends here
        self.depth = 1  # the deepest match stack below and including this node

    def update(self) -> None:
        """Depth when this node is matched: every matching child is pushed, then the last pushed
        is walked first while the others wait. Tests of one property for different values
        exclude each other (a fact has one value per property); joins always match."""
        children = [*self.tests.values(), *self.joins]
        if not children:
            self.depth = 1
            return
        alone = len({c.prop for c in self.tests.values() if c.op == "eq"})
        together = sum(1 for c in self.tests.values() if c.op != "eq") + len(self.joins)
        self.depth = alone + together - 1 + max(c.depth for c in children)


class _Network:
    """One part's alpha network: adding a rule says whether the part still fits."""

    def __init__(self) -> None:
        self.root = _Node(STRATUM_KEY, "eq")
        self.keys: set[str] = set()
        self.rules: list[Rule] = []
        self.depth = 1

    def add(self, rule: Rule) -> bool:
        """Add `rule` if the part then still fits; else leave the part as it was and return False."""
        path: list[_Node] = []
        keys = self.keys | {key for test in rule.tests for key in keys_for(test)}
        clauses = [_expression(t) for t in rule.tests]
        end = self._build({"$and": clauses} if len(clauses) > 1 else clauses[0], self.root, path) if clauses else self.root
        end.rules += 1
        for node in reversed([self.root, *path]):
            node.update()
        fits = (
            self.root.depth <= limits.MAX_MATCH_STACK
            and len(keys) <= limits.MAX_KEYS_PER_FACT
            and all(len(n.joins) <= limits.MAX_JOINS_PER_NODE and len(n.tests) <= limits.MAX_TESTS_PER_NODE for n in (self.root, *path))
            and all(n.rules <= limits.MAX_RULES_PER_NODE for n in (self.root, *path))
        )
        self.depth = self.root.depth
        if not fits:
            self._rebuild()
            return False
        self.rules.append(rule)
        self.keys = keys
        return True

    def _rebuild(self) -> None:
        rules, self.rules, self.keys = self.rules, [], set()
        self.root = _Node(STRATUM_KEY, "eq")
        for rule in rules:
            self.add(rule)

    def _build(self, expression: dict[str, Any], parent: _Node, path: list[_Node]) -> _Node:
        ((name, value),) = expression.items()
        if name == "$and":
            node = parent
            for item in value:
                node = self._build(item, node, path)
            return node
        if name == "$or":
            join = _Node("$forward", "join")  # never shared: one per `$or`
            for item in value:
                branch = self._build(item, parent, path)
                branch.joins.append(join)
            path.append(join)
            return join
        op = "neq" if name == "$neq" else "eq"
        if op == "neq":
            ((name, value),) = value.items()
        key = (name, op, json.dumps(value))
        found = parent.tests.get(key)
        if found is None:
            found = parent.tests[key] = _Node(name, op)
        path.append(found)
        return found
