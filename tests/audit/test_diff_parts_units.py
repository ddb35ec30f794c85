"""Fast unit tests of the rule-change diff (guidance_rules.audit.diff) on one chunk each, for the
changes its shortcuts must not hide: a change that alters only a rating, an override, a tissue or
field default, or the order of the notes, while the same rules fire. Each chunk's groups are
checked against a brute force through the public `recommend` (issue 24: mutation testing)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from guidance_rules.audit.diff import INVALID, NO_ANSWER, Group, diff_chunk, diff_spaces
from guidance_rules.errors import CaseError, EngineError
from guidance_rules.recommendation.pool import RuleBase
from guidance_rules.recommendation.recommender import Recommender
from guidance_rules.rulebase.load import default_knowledge, default_rules_dir, load
from guidance_rules.rulebase.space import VARIANCE_SETS, as_json_case
from tests.conftest import find_rule

KB = default_knowledge()
SHIPPED = str(default_rules_dir())
REC = Recommender(KB, cache_size=0)
PARTS = ("ratings", "documentation", "cautions", "questions")


def _answer(rec: Recommender, case: dict[str, Any]) -> tuple[str, dict[str, Any] | None] | None:
    """(modality, parts), (NO_ANSWER, None) where the rules conflict, None for an invalid case."""
    try:
        data = rec.recommend(case).model_dump(mode="json")
    except ValidationError:
        return None
    except EngineError:
        return NO_ANSWER, None
    return data["modality"], {p: data[p] for p in PARTS}


def _fired(rec: Recommender, case: dict[str, Any]) -> set[str]:
    try:
        return set(rec.evaluate(rec.resolve(case).values).fired)
    except (ValidationError, CaseError, EngineError):
        return set()  # the diff counts no rule as fired where a base gives no answer


def compare(old_dir: str, new_dir: str, name: str, start: int, stop: int, only: tuple[str, ...] | None) -> list[Group]:
    """Chunk [start, stop) of space `name`, asserted equal to what `recommend` finds; its groups."""
    old, new = load(old_dir), load(new_dir)
    [space] = [s for s in diff_spaces(old, new, only) if s.name == name]
    out = diff_chunk(RuleBase(old_dir, old.digest), RuleBase(new_dir, new.digest), space, start, stop)
    rec_new = Recommender(new, cache_size=0)
    want: dict[tuple[str, str, str], Group] = {}
    valid: Counter[str] = Counter()
    for i in range(start, stop):
        case = as_json_case(space.case(i))
        before, after = _answer(REC, case), _answer(rec_new, case)
        valid.update(["old"] * (before is not None) + ["new"] * (after is not None))
        if before == after:
            continue
        key = (case.get("site", ""), before[0] if before else INVALID, after[0] if after else INVALID)
        g = want.get(key) or want.setdefault(key, Group(name, *key, example=case, first=i))
        g.count += 1
        g.parts.update(["validity"] * ((before is None) != (after is None)) + ["modality"] * (key[1] != key[2]))
        if before and after and before[1] and after[1]:
            g.parts.update(p for p in PARTS if before[1][p] != after[1][p])
        was, now = _fired(REC, case), _fired(rec_new, case)
        g.rules_old_only.update(was - now)
        g.rules_new_only.update(now - was)
    assert out.valid == valid
    assert {(g.site, g.old, g.new): (g.as_json(), g.first) for g in out.groups} == {k: (g.as_json(), g.first) for k, g in want.items()}
    return out.groups


def test_a_rating_changed_alone_is_found(rule_copy: Callable[..., Path]) -> None:
    """The same rules fire under both bases, but one rates ultrasound lower: only the ratings differ."""

    def lower(data: dict[str, Any]) -> None:
        find_rule(data, "RATE-LANDMARK-SUITABLE")["then"]["rate"]["ultrasound"] = "usually_not_appropriate"

    new_dir = str(rule_copy("landmark.yaml", lower))
    groups = compare(SHIPPED, new_dir, "sites", 0, 64, ("knee",))
    assert groups and all(set(g.parts) == {"ratings"} and not g.rules_old_only and not g.rules_new_only for g in groups)


def test_an_override_dropped_leaves_no_answer(rule_copy: Callable[..., Path]) -> None:
    """Two rules then disagree on a rating and neither wins: the new base has no answer there."""
    new_dir = str(rule_copy("landmark.yaml", lambda d: find_rule(d, "RATE-LANDMARK-CLOSE").pop("overrides")))
    groups = compare(SHIPPED, new_dir, "sites", 0, 64, ("subacromial_bursa",))
    assert groups and all(g.new == NO_ANSWER and set(g.parts) == {"modality"} and not g.rules_new_only for g in groups)


def test_a_tissue_default_changed_is_found(rule_copy: Callable[..., Path]) -> None:
    """The equipment space gives no precise_plane: a fascial plane's default decides it."""

    def drop(data: dict[str, Any]) -> None:
        del data["tissue"]["fascial_plane"]["precise_plane"]
        data["tissue"]["fascial_plane"]["target_size"] = "small"  # the tissue keeps a default (the same as the site's)

    new_dir = str(rule_copy("defaults.yaml", drop))
    groups = compare(SHIPPED, new_dir, "equipment", 0, 24, ("plantar_fascia",))
    assert groups and {g.site for g in groups} == {"plantar_fascia"}


def test_a_field_default_changed_is_found(rule_copy: Callable[..., Path]) -> None:
    """No site case names its equipment: the default equipment decides what can be recommended."""
    new_dir = str(rule_copy("defaults.yaml", lambda d: d["fields"].update(available_modalities=["ultrasound"])))
    groups = compare(SHIPPED, new_dir, "sites", 0, 64, ("lumbar_facet",))
    assert groups and any(g.old == "fluoroscopy" for g in groups)


def test_a_free_case_changed_is_grouped_without_a_site(rule_copy: Callable[..., Path]) -> None:
    """The free space (no site): its changed cases form groups with no site, in its own picture cells."""
    new_dir = str(rule_copy("landmark.yaml", lambda d: find_rule(d, "LU-EFFUSION").update(status="retired")))
    [free] = [s for s in diff_spaces(KB, KB) if s.name == "free"]
    first = {f: values[0] for f, values in zip(free.fields, free.choices, strict=True)}
    start = free.index({**first, "tissue": "joint", "palpable": True, "anatomy_variance": VARIANCE_SETS[4]})
    assert VARIANCE_SETS[4] == ("effusion",)
    groups = compare(SHIPPED, new_dir, "free", start, start + 32, None)
    assert groups and all(g.site == "" and g.as_json()["site"] is None and "site" not in (g.example or {}) for g in groups)
