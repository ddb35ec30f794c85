"""A synthetic rule base N times the shipped one, for the engine-capacity test and benchmark (issue 21.10).

The shipped rule base is copied into a directory and one file of synthetic rules is added, spread
over every stratum: derivation rules (of new synthetic facts, chained over several levels and
reading the shipped derived facts, so they land in every derivation stratum), rating rules
(each a narrower copy of a shipped rating rule that nothing overrides, with the same ratings, so
it always agrees with the rule it copies), and documentation, caution and question rules. None of
it is clinical knowledge: it exists only to load the engine. Every synthetic rule's conditions are
taken from one valid case's resolved values and that case is its firing example, so every rule
fires on its own example; the conditions use every form the condition language has (a value, a
list of values, `{not: [...]}`, list fields, derived facts, the chosen modality), because the
engine's limits depend on the form.

The synthetic rules never change a modality or a rating category: derived synthetic facts are
read only by other synthetic rules, and the rating copies agree with their originals.

    .venv/bin/python -m benchmarks.large_rulebase DIR [--factor 10]   # write one, print its size
"""

from __future__ import annotations

import argparse
import itertools
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from guidance_rules.model import Modality
from guidance_rules.recommendation.explain import Evaluation
from guidance_rules.recommendation.recommender import Recommender
from guidance_rules.rulebase.conditions import CASE_FIELDS, EQUIPMENT_FIELD, Test
from guidance_rules.rulebase.domain import KnowledgeBase, Rule
from guidance_rules.rulebase.load import default_rules_dir, load

SYNTHETIC_FILE = "synthetic.yaml"
PREFIX = "SYN"
_OUTPUT = ("caution", "documentation", "question")


def _cases(kb: KnowledgeBase) -> list[dict[str, Any]]:
    """Small valid cases: every site with every injectate, some with a variance or no equipment."""
    injectates = CASE_FIELDS["injectate"].values
    variances = ("", *CASE_FIELDS["anatomy_variance"].values)
    out = []
    for n, (site, injectate) in enumerate(itertools.product(kb.sites, injectates)):
        case: dict[str, Any] = {"site": site, "injectate": injectate}
        variance = variances[n % len(variances)]
        if variance:
            case["anatomy_variance"] = [variance]
        if n % 5 == 0:
            case["available_modalities"] = []
        out.append(case)
    return out


def _others(field: str, value: Any, kb: KnowledgeBase) -> list[Any]:
    values = tuple(kb.sites) if field == "site" else CASE_FIELDS[field].values if field in CASE_FIELDS else (False, True)
    return [v for v in values if v != value]


def _test(field: str, value: Any, form: int, kb: KnowledgeBase) -> Any:
    """A test on `field` that holds for `value`, in one of several forms."""
    if field in CASE_FIELDS and CASE_FIELDS[field].is_list:
        absent = [v for v in CASE_FIELDS[field].values if v not in value]
        if value and form % 2:
            return sorted(value)[:1] + absent[:1]  # includes any of
        return {"not": absent[: 1 + form % 3]} if absent else None  # includes none of
    others = _others(field, value, kb)
    if isinstance(value, bool) or not others:
        return value
    if form % 3 == 0:
        return value
    if form % 3 == 1:
        return [value, *others[: 1 + form % 4]]
    return {"not": others[: 1 + form % 2]}


def _when(values: Mapping[str, Any], fields: list[str], seed: int, kb: KnowledgeBase) -> dict[str, Any]:
    when: dict[str, Any] = {}
    for k, field in enumerate(fields):
        test = _test(field, values[field], seed + k, kb)
        if test is not None:
            when[field] = test
    return when


def _plain_when(tests: tuple[Test, ...]) -> dict[str, Any]:
    """A parsed condition written back as a `when:` mapping."""
    out: dict[str, Any] = {}
    for test in tests:
        values = sorted(test.values, key=str)
        out[test.field] = {"not": values} if test.negated else values
    return out


def _rule(rule_id: str, then: dict[str, Any], when: dict[str, Any], case: dict[str, Any], sources: list[dict[str, str]]) -> dict[str, Any]:
    return {
        "id": rule_id,
        "title": f"Synthetic rule {rule_id}",
        "version": 1,
        "status": "active",
        "when": when,
        "then": then,
        "conclusion": f"Synthetic conclusion of {rule_id}, for engine capacity tests only.",
        "rationale": "Generated to load the engine; it is not clinical knowledge.",
        "sources": sources,
        "examples": {"fires": [case]},
    }


class _Generator:
    def __init__(self, kb: KnowledgeBase, recommender: Recommender) -> None:
        self.kb = kb
        self.recommender = recommender
        self.examples: list[tuple[dict[str, Any], Evaluation]] = []
        for case in _cases(kb):
            try:
                self.examples.append((case, recommender.evaluate(recommender.resolve(case).values)))
            except ValidationError:
                continue  # a contradictory combination: not an example
        self.sources = [{"source": s, "locator": loc} for s, loc in kb.rules[0].cited]
        self.fields = [f for f in CASE_FIELDS if f != EQUIPMENT_FIELD] + ["site"]
        self.facts: dict[str, str] = {}
        self.true_facts: list[dict[int, list[str]]] = []  # per level: example number -> synthetic facts true for it

    def pick(self, n: int) -> list[str]:
        """The site, the injectate and one to three other fields: a rule that fires on a small
        share of cases (the audit's time grows with the rules fired per case, not with the rules)."""
        others = [f for f in self.fields if f not in ("site", "injectate")]
        return ["site", "injectate", *(others[(n + k) % len(others)] for k in range(1 + n % 3))]

    def derive(self, count: int, levels: int) -> Iterator[dict[str, Any]]:
        """Derivation rules over `levels` levels; level k > 1 reads a fact of level k - 1."""
        per_level = max(1, count // levels)
        n = 0
        for level in range(1, levels + 1):
            true: dict[int, list[str]] = {}
            for _ in range(per_level if level < levels else count - per_level * (levels - 1)):
                e = n % len(self.examples)
                case, ev = self.examples[e]
                fact = f"synthetic_{n}"
                self.facts[fact] = f"A synthetic fact for engine capacity tests ({n})."
                fields = self.pick(n)
                fields += [list(self.kb.facts)[n % len(self.kb.facts)]] if n % 2 else []
                when = _when(ev.values, fields, n, self.kb)
                earlier = self.true_facts[-1].get(e) if self.true_facts else None
                if earlier:
                    when[earlier[n % len(earlier)]] = True
                true.setdefault(e, []).append(fact)
                yield _rule(f"{PREFIX}-DERIVE-{n}", {"derive": fact}, when, case, self.sources)
                n += 1
            self.true_facts.append(true)

    def rate(self, count: int) -> Iterator[dict[str, Any]]:
        """Narrower copies of rating rules that no rule overrides: they agree with their original."""
        overridden = {other for r in self.kb.rules for other in r.overrides}
        originals = [r for r in self.kb.rules if r.kind == "rate" and r.id not in overridden]
        for n in range(count):
            original: Rule = originals[n % len(originals)]
            case = original.fires[n // len(originals) % len(original.fires)]
            values = self.recommender.evaluate(self.recommender.resolve(case).values).values
            when = _plain_when(original.tests)
            extra = [f for f in ("site", "injectate", self.fields[n % len(self.fields)]) if f not in when]
            when.update(_when(values, extra, n, self.kb))
            sources = [{"source": s, "locator": loc} for s, loc in original.cited]
            rule = _rule(f"{PREFIX}-RATE-{n}", {"rate": {m.value: c.value for m, c in original.rate.items()}}, when, case, sources)
            if original.overrides:
                rule["overrides"] = list(original.overrides)
            yield rule

    def output(self, count: int) -> Iterator[dict[str, Any]]:
        """Documentation, caution and question rules, some on the chosen modality or equipment."""
        for n in range(count):
            kind = _OUTPUT[n % len(_OUTPUT)]
            e = (n * 7) % len(self.examples)
            case, ev = self.examples[e]
            fields = self.pick(n)
            when: dict[str, Any] = {}
            if n % 2:  # first, as the shipped cautions do: the shape that overflowed durable's limits
                modality = ev.modality.value
                when["modality"] = [modality, *[m.value for m in Modality if m.value != modality][: 1 + n % 3]]
            when.update(_when(ev.values, fields, n, self.kb))
            absent = [v for v in CASE_FIELDS[EQUIPMENT_FIELD].values if v not in ev.values[EQUIPMENT_FIELD]]
            if n % 5 == 0 and absent:  # "includes none of" only: the audit's static check reads list fields as variances
                when[EQUIPMENT_FIELD] = {"not": absent[: 1 + n % 2]}
            for level in self.true_facts[: 1 + n % max(1, len(self.true_facts))]:
                facts = level.get(e)
                if facts and n % 4 == 1:
                    when[facts[n % len(facts)]] = True
            text = f"Synthetic {kind} {n}: generated for engine capacity tests; not clinical knowledge."
            yield _rule(f"{PREFIX}-{kind.upper()}-{n}", {kind: text}, when, case, self.sources)


class _NoAliases(yaml.SafeDumper):
    """Rule files allow no anchors or aliases: write every shared value out."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _dump(data: Any) -> str:
    return yaml.dump(data, Dumper=_NoAliases, sort_keys=False)


def write_large_rulebase(target: Path | str, factor: int = 10, source: Path | str | None = None) -> Path:
    """Copy a rule base (default: the shipped one) to `target` and add synthetic rules until it
    holds `factor` times as many active rules; return `target`."""
    source = Path(source) if source else default_rules_dir()
    target = Path(target)
    shutil.copytree(source, target, dirs_exist_ok=True)
    kb = load(source)
    extra = (factor - 1) * len(kb.rules)
    derive, rate = extra * 4 // 10, extra // 10
    with Recommender(kb, cache_size=0) as recommender:
        generator = _Generator(kb, recommender)
        levels = max(1, len(recommender.compiled.derive))
        rules = [*generator.derive(derive, levels), *generator.rate(rate), *generator.output(extra - derive - rate)]
    (target / SYNTHETIC_FILE).write_text(_dump({"rules": rules}), encoding="utf-8")
    facts = yaml.safe_load((source / "facts.yaml").read_text(encoding="utf-8"))
    facts["facts"].update(generator.facts)
    (target / "facts.yaml").write_text(_dump(facts), encoding="utf-8")
    ruleset = yaml.safe_load((source / "ruleset.yaml").read_text(encoding="utf-8"))
    ruleset["rule_files"] = [*ruleset["rule_files"], SYNTHETIC_FILE]
    (target / "ruleset.yaml").write_text(_dump(ruleset), encoding="utf-8")
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("directory", type=Path)
    parser.add_argument("--factor", type=int, default=10)
    args = parser.parse_args()
    target = write_large_rulebase(args.directory, args.factor)
    print(f"{target}: {len(load(target).rules)} active rules")


if __name__ == "__main__":
    main()
