"""What the engine can hold: durable-rules 2.0.28's fixed capacities, read from its C source.

durable-rules reports an exceeded capacity only as a bare number ("Could not assert facts, error
code: 303") and only once a fact reaches the overfull part of its network, so a rule base that is
too large for it fails on some cases and not others. The compiler (`engine.compile`) works
around every capacity that depends on how rules are grouped, by splitting a stratum into parts
that each fit (see its docstring). What no grouping can change is checked here, at load time,
before the engine is reached, and stated with the file, the rule and the count.

The capacities, with where they are defined in durable-rules' `src/rules/` (2.0.28):
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Protocol

from guidance_rules.errors import RuleFileError
from guidance_rules.rulebase.conditions import Test


class Rule(Protocol):
    """What the checks read of a rule (`load.Rule`, which imports this module)."""

    @property
    def id(self) -> str: ...
    @property
    def file(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def tests(self) -> tuple[Test, ...]: ...


# Per ruleset: rete.c MAX_ACTIONS, the number of rules (actions) one ruleset can hold
# (exceeded: error 106 at compile).
MAX_RULES = 4096
# Per fact: events.c MAX_STACK_SIZE, the depth of the stack on which matching walks the alpha
# network: every matching child of a node waits there (exceeded: error 303 when a fact is asserted).
MAX_MATCH_STACK = 64
# Per alpha node: rules.h NEXT_LIST_LENGTH (128 slots, one kept empty as the end marker), the
# "or" joins below one node: each `$or` adds a join node under every branch (exceeded: error 107).
MAX_JOINS_PER_NODE = 127
# Per alpha node: rules.h NEXT_BUCKET_LENGTH (512 hash slots, one kept empty), its tests (error 106).
MAX_TESTS_PER_NODE = 511
# Per alpha node: rules.h BETA_LIST_LENGTH (256 slots, one kept empty), the rules whose whole
# condition ends at that node (error 108).
MAX_RULES_PER_NODE = 255
# Per fact: state.h MAX_OBJECT_PROPERTIES (255 slots; reaching the 255th is error 302), the
# properties of one asserted fact. The refusal is not reliably reported: a fact of 255 or more
# properties was accepted here, and once crashed the process, so the limit is kept strictly.
MAX_FACT_PROPERTIES = 254
# Per rule: rete.h MAX_SEQUENCE_EXPRESSIONS (32, reached at the 32nd), the "and"/"or" groups of one
# condition; each group takes an opening and a closing entry (error 113 at compile).
MAX_CONDITION_ENTRIES = 31

# Properties every asserted fact carries besides the values its rules read: the case number,
# the session id, the fact id and the part (stratum) tag (`engine.durable` writes them; a test
# checks a fact it asserts carries exactly these). A derived fact may not take one of these names.
FACT_ENVELOPE = ("case_no", "sid", "id", "stratum")
FACT_OVERHEAD = len(FACT_ENVELOPE)
# A derived fact's name as the engine can read it: lower case, and no "__", which separates a
# list field from its item in the engine's keys (anatomy_variance__obesity).
FACT_NAME = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")
MAX_KEYS_PER_FACT = MAX_FACT_PROPERTIES - FACT_OVERHEAD


def condition_entries(multi_valued_tests: int) -> int:
    """Entries of a compiled condition: the `$and` of all its tests, and one `$or` (or `$and`)
    for each test that compiles to several comparisons."""
    return 2 + 2 * multi_valued_tests


def engine_keys(rule: Rule) -> int:
    """Values one rule's condition reads from a fact: one per field, one per value of a list field."""
    return sum(len(test.values) if test.is_list else 1 for test in rule.tests)


def multi_valued(rule: Rule) -> int:
    return sum(1 for test in rule.tests if len(test.values) > 1)


def check_limits(rules: Sequence[Rule]) -> None:
    """Raise RuleFileError for a rule base the engine cannot hold however it is grouped."""
    count = 0
    for rule in rules:
        if rule.status != "active":
            continue
        count += 1
        if count > MAX_RULES:
            total = sum(1 for r in rules if r.status == "active")
            raise RuleFileError(
                rule.file,
                f"the rule base has {total:,} active rules and this file takes it past {MAX_RULES:,}, the most the engine "
                f"(durable-rules) holds in one ruleset; retire rules (status: retired) or merge rules with one conclusion",
                key="rules",
            )
        entries = condition_entries(multi_valued(rule))
        if entries > MAX_CONDITION_ENTRIES:
            most = (MAX_CONDITION_ENTRIES - 2) // 2
            raise RuleFileError(
                rule.file,
                f"{multi_valued(rule)} tests with several values; the engine takes at most {most} per rule: split the rule",
                rule=rule.id,
                key="when",
            )
        keys = engine_keys(rule)
        if keys > MAX_KEYS_PER_FACT:
            raise RuleFileError(
                rule.file,
                f"the condition reads {keys} values (a list field counts once per value); the engine takes at most "
                f"{MAX_KEYS_PER_FACT} per rule: split the rule",
                rule=rule.id,
                key="when",
            )


def check_fact_names(names: Iterable[str], case_fields: Iterable[str]) -> None:
    """A derived fact named like a case field, like the engine's own keys, or with a name the
    engine's keys cannot carry would be read as something else (or crash the flattening)."""
    fields = set(case_fields)
    for name in names:
        if name in fields:
            why = "is a case field"
        elif name in FACT_ENVELOPE:
            why = f"is a key the engine gives every fact ({', '.join(FACT_ENVELOPE)})"
        elif not FACT_NAME.fullmatch(name):
            why = "is not a fact name: use lower-case letters and digits joined by single underscores"
        else:
            continue
        raise RuleFileError("facts.yaml", f"derived fact '{name}' {why}; rename it", key=f"facts.{name}")
