"""Fast unit tests of the audit's checks that need no enumeration (guidance_rules.audit.check): the
report's verdict and summary, the static checks, the firing-set analysis, monotone safety, the
completeness proof, determinism, the rules' own examples and equipment, each on small hand-made
rule bases, marks or spaces (issue 24: mutation testing of the audit; the planted-fault audits in
test_check.py take seconds each). Only functions whose contract outlives the audit's worker
restructuring are tested here; the enumeration itself is proved by test_check.py."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from guidance_rules.audit.check import (
    FAILED,
    INVALID,
    MODALITIES,
    UNEVALUATED,
    AuditReport,
    analyse_marks,
    assert_complete,
    cache_findings,
    determinism_findings,
    equipment_findings,
    example_findings,
    monotone_findings,
    static_findings,
    statically_dead,
)
from guidance_rules.audit.findings import Finding, SpaceResult
from guidance_rules.audit.invariants import Escalation
from guidance_rules.errors import AuditError
from guidance_rules.model import Category, Modality
from guidance_rules.recommendation.recommender import Recommender
from guidance_rules.rulebase.conditions import CASE_FIELDS
from guidance_rules.rulebase.conditions import Test as Cond
from guidance_rules.rulebase.domain import KnowledgeBase, Rule
from guidance_rules.rulebase.load import default_knowledge, default_rules_dir, load
from guidance_rules.rulebase.schemas import SourceSpec
from guidance_rules.rulebase.space import EQUIPMENT_SETS, Space, as_json_case

KB = default_knowledge()
REC = Recommender(KB, cache_size=0)
US, FL, BOTH, LM = Modality.ULTRASOUND, Modality.FLUOROSCOPY, Modality.BOTH, Modality.LANDMARK
NOT, MAY, USUALLY = Category.USUALLY_NOT_APPROPRIATE, Category.MAY_BE_APPROPRIATE, Category.USUALLY_APPROPRIATE
CODE = {m: MODALITIES.index(m) for m in Modality}
CASE_FIELDS_INJECTATES = list(CASE_FIELDS["injectate"].values)


def report(findings: list[Finding], spaces: list[SpaceResult] | None = None) -> AuditReport:
    return AuditReport(
        ruleset={"version": "1.0", "digest": "d"},
        findings=findings,
        spaces=spaces or [],
        rule_counts={"B": 0, "A": 3, "C": 0},
        modality_counts={"ultrasound": 2},
        seconds=1.23456,
        workers=3,
    )


# ---- the report ----------------------------------------------------------------------------


def test_the_audit_passes_only_without_errors() -> None:
    assert report([]).passed
    assert report([Finding("warning", "w", "m"), Finding("warning", "v", "m")]).passed
    assert not report([Finding("warning", "w", "m"), Finding("error", "e", "m")]).passed


def test_the_summary() -> None:
    a = SpaceResult("free", 100, evaluated=100, valid=60, covered=Counter({"INV-A": 2, "INV-B": 1}))
    b = SpaceResult("sites", 50, evaluated=50, valid=50, covered=Counter({"INV-A": 3}))
    findings = [Finding("error", "gap", "g1", {"site": "knee"}), Finding("warning", "subsumed", "s"), Finding("error", "gap", "g2")]
    assert report(findings, [a, b]).summary() == {
        "passed": False,
        "ruleset": {"version": "1.0", "digest": "d"},
        "cases": {"free": {"enumerated": 100, "evaluated": 100, "valid": 60}, "sites": {"enumerated": 50, "evaluated": 50, "valid": 50}},
        "modality_counts": {"ultrasound": 2},
        "invariants_covered": {"INV-A": 5, "INV-B": 1},
        "rule_firing_counts": {"B": 0, "A": 3, "C": 0},
        "never_fired": ["B", "C"],
        "finding_counts": {"error:gap": 2, "warning:subsumed": 1},
        "findings": [
            {"level": "error", "check": "gap", "message": "g1", "case": {"site": "knee"}},
            {"level": "warning", "check": "subsumed", "message": "s", "case": None},
            {"level": "error", "check": "gap", "message": "g2", "case": None},
        ],
        "seconds": 1.23,
        "workers": 3,
    }
    assert report([]).summary()["invariants_covered"] == {} and report([]).summary()["passed"] is True


# ---- static checks -------------------------------------------------------------------------


def rule(rule_id: str, **changes: Any) -> Rule:
    return dataclasses.replace(KB.rule(rule_id), **changes)


def kb_with(**changes: Any) -> KnowledgeBase:
    return dataclasses.replace(KB, **changes)


def test_the_shipped_rule_base_has_no_static_error() -> None:
    assert [f for f in static_findings(KB) if f.level == "error"] == []
    assert statically_dead(KB) == []


def test_a_proposition_cited_nowhere_is_an_error() -> None:
    citers = {r.id for r in KB.rules if ("article", "TR2") in r.cited}
    assert citers and ("article", "TR2") not in KB.policy.cited
    assert not any(e.locator == "TR2" for s in KB.sites.values() for e in s.evidence)
    rules = tuple(r if r.id not in citers else dataclasses.replace(r, cited=tuple(c for c in r.cited if c[1] != "TR2")) for r in KB.rules)
    found = static_findings(kb_with(rules=rules))
    assert [f for f in found if f.level == "error"] == [
        Finding("error", "uncited-proposition", "proposition TR2 is cited by no rule, site record or policy")
    ]


def test_a_proposition_cited_by_a_site_or_the_policy_only_is_cited() -> None:
    rules = tuple(dataclasses.replace(r, cited=tuple(c for c in r.cited if c[0] != "article")) for r in KB.rules)
    cited_by_sites = {e.locator for s in KB.sites.values() for e in s.evidence if e.source == "article"}
    cited_by_policy = {loc for src, loc in KB.policy.cited if src == "article"}
    uncited = {f.message.split()[1] for f in static_findings(kb_with(rules=rules)) if f.check == "uncited-proposition"}
    assert uncited == set(KB.propositions()) - cited_by_sites - cited_by_policy
    assert cited_by_policy and cited_by_sites and not uncited & (cited_by_sites | cited_by_policy)


def test_a_site_without_evidence_and_an_unused_source_are_warnings() -> None:
    knee = dataclasses.replace(KB.sites["knee"], evidence=())
    extra = SourceSpec(title="An unused study", kind="study")
    found = static_findings(kb_with(sites={**KB.sites, "knee": knee}, sources={**KB.sources, "unused2099": extra}))
    warnings = [f for f in found if f.level == "warning"]
    assert Finding("warning", "unsourced-site", "site 'knee' carries no evidence with a source") in warnings
    assert Finding("warning", "unused-source", "source 'unused2099' is cited nowhere") in warnings
    assert Finding("warning", "unused-source", "source 'article' is cited nowhere") not in warnings


def test_a_source_cited_only_by_the_policy_or_a_rule_is_used() -> None:
    sites = {k: dataclasses.replace(s, evidence=()) for k, s in KB.sites.items()}
    unused = {f.message.split("'")[1] for f in static_findings(kb_with(sites=sites)) if f.check == "unused-source"}
    by_rules = {src for r in KB.rules for src, _ in r.cited}
    by_policy = {src for src, _ in KB.policy.cited}
    assert unused == set(KB.sources) - by_rules - by_policy and "article" not in unused


def _t(field: str, *values: Any, negated: bool = False, is_list: bool = False) -> Cond:
    return Cond(field, frozenset(values), negated, is_list)


def test_a_rule_whose_own_tests_contradict_is_statically_dead() -> None:
    contradictory = rule("RATE-US-FIT", id="DEAD-1", tests=(_t("depth", "deep"), _t("depth", "superficial")))
    possible = rule("RATE-US-FIT", id="LIVE-1", tests=(_t("depth", "deep"), _t("depth", "superficial", negated=True)))
    facts_only = rule("RATE-US-FIT", id="LIVE-2", tests=(_t("ultrasound_fit", True), _t("ultrasound_fit", False)))
    found = statically_dead(kb_with(rules=(facts_only, possible, contradictory)))  # a rule of facts only is passed over, not the end
    assert found == [
        Finding("error", "dead-rule", f"DEAD-1 ({contradictory.file}) can never fire: its conditions contradict each other or a constraint")
    ]


def test_a_rule_a_constraint_always_forbids_is_statically_dead() -> None:
    effusion = _t("anatomy_variance", "effusion", is_list=True)
    forbidden = rule("RATE-US-FIT", id="DEAD-2", tests=(effusion, _t("tissue", "tendon")))
    allowed = rule("RATE-US-FIT", id="LIVE-3", tests=(effusion, _t("tissue", "tendon", "joint")))
    assert [f.message.split()[0] for f in statically_dead(kb_with(rules=(forbidden, allowed)))] == ["DEAD-2"]
    # the constraint reads fields the rule does not test: it decides nothing here
    unrelated = rule("RATE-US-FIT", id="LIVE-4", tests=(effusion,))
    assert statically_dead(kb_with(rules=(unrelated,))) == []


# ---- what the firing sets show -------------------------------------------------------------


def raters() -> tuple[Rule, ...]:
    plain = rule("RATE-US-FIT", id="R-A", rate={US: USUALLY}, overrides=())
    same = rule("RATE-US-FIT", id="R-B", rate={US: USUALLY}, overrides=())
    clash = rule("RATE-US-FIT", id="R-C", rate={US: NOT, FL: MAY}, overrides=())
    return plain, same, clash


def test_dead_rules_are_those_no_case_fired() -> None:
    a, b, c = raters()
    kb = kb_with(rules=(a, b, c))
    found = analyse_marks(kb, {"R-A": 0b1, "R-B": 0, "R-C": 0}, {"R-C"})
    assert [f for f in found if f.check == "dead-rule"] == [Finding("error", "dead-rule", f"R-B ({b.file}) never fires on any valid case")]


def test_a_rule_fired_only_where_another_with_its_conclusion_fires_is_subsumed() -> None:
    a, b, _ = raters()
    kb = kb_with(rules=(a, b))
    said = "every case that fires {0} also fires {1}, with the same conclusion"
    assert analyse_marks(kb, {"R-A": 0b0101, "R-B": 0b0111}, set()) == [
        Finding("warning", "subsumed", "R-A is subsumed by R-B: " + said.format("R-A", "R-B"))
    ]
    assert analyse_marks(kb, {"R-A": 0b0111, "R-B": 0b0101}, set()) == [
        Finding("warning", "subsumed", "R-B is subsumed by R-A: " + said.format("R-B", "R-A"))
    ]
    assert analyse_marks(kb, {"R-A": 0b0101, "R-B": 0b0101}, set()) == [
        Finding("warning", "subsumed", "R-A is subsumed by R-B on exactly the same cases: " + said.format("R-A", "R-B"))
    ]
    assert analyse_marks(kb, {"R-A": 0b0101, "R-B": 0b1010}, set()) == []  # disjoint
    assert analyse_marks(kb, {"R-A": 0b0101, "R-B": 0b0011}, set()) == []  # overlapping, neither within the other


def test_rules_with_different_conclusions_are_not_subsumed() -> None:
    a, _, c = raters()
    derive = next(r for r in KB.rules if r.derive)
    other = next(r for r in KB.rules if r.derive and r.derive != derive.derive)
    same_fact = dataclasses.replace(derive, id="D-2")
    kb = kb_with(rules=(a, c, derive, other, same_fact))
    marks = {"R-A": 0b1, "R-C": 0b11, derive.id: 0b1, other.id: 0b11, "D-2": 0b11}
    found = [f for f in analyse_marks(kb, marks, set()) if f.check == "subsumed"]
    assert [f.message.split(":")[0] for f in found] == [f"{derive.id} is subsumed by D-2"]


def test_rating_rules_that_clash_on_shared_cases_conflict_unless_one_overrides() -> None:
    a, b, c = raters()
    said = "R-A and R-C rate ultrasound differently on overlapping cases and neither overrides the other"
    assert [f for f in analyse_marks(kb_with(rules=(a, b, c)), {"R-A": 0b01, "R-B": 0b10, "R-C": 0b01}, set()) if f.level == "error"] == [
        Finding("error", "conflict", said)
    ]
    assert [f.check for f in analyse_marks(kb_with(rules=(a, c)), {"R-A": 0b01, "R-C": 0b10}, set())] == []  # no shared case
    for overriding in (
        (dataclasses.replace(a, overrides=("R-C",)), c),
        (a, dataclasses.replace(c, overrides=("R-A",))),
    ):
        assert analyse_marks(kb_with(rules=overriding), {"R-A": 0b1, "R-C": 0b1}, set()) == []
    both = dataclasses.replace(a, rate={US: MAY, FL: USUALLY})
    [conflict] = analyse_marks(kb_with(rules=(c, both)), {"R-A": 0b1, "R-C": 0b1}, set())
    assert conflict.message == "R-A and R-C rate ultrasound, fluoroscopy differently on overlapping cases and neither overrides the other"
    agree = dataclasses.replace(a, rate={FL: MAY})
    assert analyse_marks(kb_with(rules=(c, agree)), {"R-A": 0b1, "R-C": 0b1}, set()) == []
    derive = next(r for r in KB.rules if r.kind != "rate")
    assert [
        f.check for f in analyse_marks(kb_with(rules=(c, dataclasses.replace(derive, rate={US: USUALLY}))), {"R-C": 1, derive.id: 1}, set())
    ] == []


def test_a_rating_rule_absent_from_the_marks_never_fired() -> None:
    a, _, c = raters()
    kb = kb_with(rules=(a, c))
    assert analyse_marks(kb, {"R-A": 0b1}, set()) == [] and analyse_marks(kb, {"R-C": 0b1}, set()) == []


def test_rules_absent_from_the_marks_are_neither_dead_twice_nor_compared() -> None:
    a, b, c = raters()
    found = analyse_marks(kb_with(rules=(a, b, c)), {"R-A": 0b1, "R-B": 0, "R-C": 0b1}, set())
    assert sorted(f.check for f in found) == ["conflict", "dead-rule"]


# ---- monotone safety -----------------------------------------------------------------------

SPACE = Space("tiny", ("flag", "depth", "x"), ((False, True), ("superficial", "intermediate", "deep"), ("a", "b")))
DEEPER = Escalation("INV-D", "s", "depth", (("superficial", "intermediate"), ("intermediate", "deep")), (), (), ())
FLAG = Escalation("INV-F", "s", "flag", ((False, True),), (), (), ())


def codes(**at: Modality | int) -> bytes:
    """Every case ultrasound except those given by 'flag_depth_x' (e.g. T_deep_a)."""
    out = bytearray([CODE[US]]) * SPACE.size
    for name, code in at.items():
        flag, depth, x = name.split("_")
        out[SPACE.index({"flag": flag == "T", "depth": depth, "x": x})] = CODE[code] if isinstance(code, Modality) else code
    return bytes(out)


def test_each_escalation_step_below_a_landmark_case_is_checked() -> None:
    found = monotone_findings(SPACE, codes(F_deep_b=LM), (DEEPER, FLAG))
    assert found == [
        Finding(
            "error",
            "monotone",
            "INV-D: changing depth from intermediate to deep turns ultrasound into landmark",
            {"flag": False, "depth": "intermediate", "x": "b"},
        )
    ]
    found = monotone_findings(SPACE, codes(T_intermediate_a=LM, F_intermediate_a=FL), (DEEPER, FLAG))
    assert [(f.message, f.case) for f in found] == [
        (
            "INV-D: changing depth from superficial to intermediate turns ultrasound into landmark",
            {"flag": True, "depth": "superficial", "x": "a"},
        ),
        ("INV-F: changing flag from False to True turns fluoroscopy into landmark", {"flag": False, "depth": "intermediate", "x": "a"}),
    ]


def test_no_finding_below_landmark_an_invalid_or_failed_case_or_outside_the_space() -> None:
    assert monotone_findings(SPACE, codes(), (DEEPER, FLAG)) == []
    assert monotone_findings(SPACE, codes(F_superficial_a=LM), (DEEPER, FLAG)) == []  # nothing below it
    every_b = {f"{flag}_{depth}_b": LM for flag in "TF" for depth in ("superficial", "intermediate", "deep")}
    assert monotone_findings(SPACE, codes(**every_b), (DEEPER, FLAG)) == []  # landmark staying landmark
    assert monotone_findings(SPACE, codes(F_intermediate_a=LM, F_superficial_a=INVALID), (DEEPER,)) == []
    assert monotone_findings(SPACE, codes(F_intermediate_a=LM, F_superficial_a=FAILED), (DEEPER,)) == []
    elsewhere = Escalation("INV-N", "s", "near_neurovascular", ((False, True),), (), (), ())
    assert monotone_findings(SPACE, codes(T_deep_a=LM), (elsewhere,)) == []


# ---- completeness --------------------------------------------------------------------------

TEN = Space("ten", ("n",), (tuple(range(10)),))


def test_chunks_that_tile_the_space_in_any_order_pass() -> None:
    assert_complete(TEN, [(5, 10), (0, 2), (2, 5)], bytes(10))  # raises on anything less
    assert_complete(TEN, [(0, 10)], bytes([CODE[LM], INVALID, FAILED]) + bytes(7))


@pytest.mark.parametrize(
    ("spans", "codes_", "said"),
    [
        ([(0, 3), (6, 10)], bytes(10), r"^space ten: cases 3\.\.5 were never evaluated \(chunks \[\(0, 3\), \(6, 10\)\]\)$"),
        ([(0, 6), (3, 10)], bytes(10), r"^space ten: cases 3\.\.5 were evaluated twice \(chunks \[\(0, 6\), \(3, 10\)\]\)$"),
        ([(0, 7)], bytes(10), r"^space ten: cases 7\.\.9 were never evaluated \(the chunks end at 7\)$"),
        ([], bytes(10), r"^space ten: cases 0\.\.9 were never evaluated \(the chunks end at 0\)$"),
        ([(0, 10), (10, 12)], bytes(10), r"the chunks end at 12"),  # past the end (said as "cases 12..9 were never evaluated")
        (
            [(0, 10)],
            bytes(3) + bytes([UNEVALUATED]) * 2 + bytes(5),
            r"^space ten: 2 of 10 cases were never evaluated, the first at index 3$",
        ),
    ],
)
def test_an_incomplete_enumeration_is_an_audit_error(spans: list[tuple[int, int]], codes_: bytes, said: str) -> None:
    with pytest.raises(AuditError, match=said):
        assert_complete(TEN, spans, codes_)


def test_large_counts_of_never_evaluated_cases_are_grouped() -> None:
    big = Space("big", ("n",), (tuple(range(2000)),))
    with pytest.raises(AuditError, match=r"1,500 of 2,000 cases were never evaluated, the first at index 500"):
        assert_complete(big, [(0, 2000)], bytes(500) + bytes([UNEVALUATED]) * 1500)


# ---- determinism, examples, equipment, cache -------------------------------------------------

SITES = Space("sites", ("site", "injectate"), (("knee", "hip"), ("prp", "corticosteroid")))


def test_determinism_recomputes_each_sample_and_names_those_that_differ() -> None:
    samples = {i: REC.recommend_json(as_json_case(SITES.case(i))) for i in range(SITES.size)}
    assert determinism_findings(REC, SITES, samples) == []
    samples[1], samples[3] = samples[1] + " ", "{}"
    assert determinism_findings(REC, SITES, samples) == [
        Finding("error", "determinism", "JSON differs between processes", SITES.case(3)),
        Finding("error", "determinism", "JSON differs between processes", SITES.case(1)),
    ]
    assert determinism_findings(REC, SITES, {}) == []


class Holder:
    """A recommender over the real engine whose rule base (as the checks read it) is the one given."""

    def __init__(self, knowledge: KnowledgeBase, evaluate: Any = None) -> None:
        self.knowledge = knowledge
        self._evaluate = evaluate or REC.evaluate

    def resolve(self, case: Mapping[str, Any]) -> Any:
        return REC.resolve(case)

    def evaluate(self, values: Mapping[str, Any]) -> Any:
        return self._evaluate(values)


def test_the_shipped_examples_hold() -> None:
    some = tuple(r for r in KB.rules if r.id in ("RATE-US-FIT", "RATE-US-CONTRAST", "RATE-US-LIMITED"))
    assert len(some) == 3 and example_findings(Holder(kb_with(rules=some))) == []  # type: ignore[arg-type]


def test_an_example_that_does_not_behave_as_said_is_an_error() -> None:
    knee, hip = {"site": "knee", "injectate": "corticosteroid"}, {"site": "hip", "injectate": "corticosteroid"}
    bad = rule("RATE-US-FIT", fires=(knee, hip, {"site": "kne", "injectate": "prp"}), silent=(hip, knee))
    found = example_findings(Holder(kb_with(rules=(bad,))))  # type: ignore[arg-type]
    assert [(f.level, f.check, f.case) for f in found] == [
        ("error", "rule-example", knee),
        ("error", "rule-example", {"site": "kne", "injectate": "prp"}),
        ("error", "rule-example", hip),
    ]
    assert found[0].message == "RATE-US-FIT does not fire on its own 'fires' example"
    assert (
        found[1].message.startswith("RATE-US-FIT: example {'site': 'kne', 'injectate': 'prp'} fails: ") and "kne" in found[1].message[60:]
    )
    assert found[2].message == "RATE-US-FIT fires on its own 'silent' example"


def test_an_example_the_engine_cannot_answer_is_an_error() -> None:
    from guidance_rules.errors import EngineError

    def failing(values: Mapping[str, Any]) -> Any:
        raise EngineError("planted gap")

    found = example_findings(Holder(kb_with(rules=(KB.rule("RATE-US-FIT"),)), failing))  # type: ignore[arg-type]
    assert len(found) == len(KB.rule("RATE-US-FIT").fires) + len(KB.rule("RATE-US-FIT").silent)
    assert all(f.message.endswith("fails: planted gap") for f in found)


def test_equipment_never_changes_the_answer_of_the_shipped_rules() -> None:
    fired: set[str] = set()
    two = kb_with(sites={k: KB.sites[k] for k in ("knee", "lumbar_facet")})
    assert equipment_findings(Holder(two), fired) == []  # type: ignore[arg-type]
    expected = {
        r
        for site in ("knee", "lumbar_facet")
        for i in ("prp", "corticosteroid")
        for r in REC.evaluate(REC.resolve({"site": site, "injectate": i}).values).fired
    }
    assert expected <= fired


def test_a_modality_that_follows_the_equipment_is_an_error() -> None:
    def by_equipment(values: Mapping[str, Any]) -> Any:
        ev = REC.evaluate(values)
        if values["site"] == "hip" and values["injectate"] == "prp" and list(values["available_modalities"]) == ["ultrasound"]:
            return dataclasses.replace(ev, modality=LM)
        return ev

    fired: set[str] = set()
    found = equipment_findings(Holder(kb_with(sites={"hip": KB.sites["hip"]}), by_equipment), fired)  # type: ignore[arg-type]
    [finding] = found
    assert (finding.level, finding.check, finding.case) == ("error", "equipment", {"site": "hip", "injectate": "prp"})
    assert finding.message.startswith("modality changes with available_modalities: {(): <Modality.ULTRASOUND")
    assert "('ultrasound',): <Modality.LANDMARK: 'landmark'>" in finding.message and len(EQUIPMENT_SETS) == 4


def test_an_engine_fault_under_some_equipment_is_left_to_the_enumeration() -> None:
    from guidance_rules.errors import EngineError

    def gap(values: Mapping[str, Any]) -> Any:
        if list(values["available_modalities"]) == []:
            raise EngineError("gap")
        return REC.evaluate(values)

    assert equipment_findings(Holder(kb_with(sites={"hip": KB.sites["hip"]}), gap), set()) == []  # type: ignore[arg-type]


def test_a_cached_rule_base_must_equal_the_files() -> None:
    shipped = load(default_rules_dir())
    assert cache_findings(str(default_rules_dir()), shipped) == []
    for field in ("digest", "identity_fields"):  # the first and the last part compared
        tampered: dict[str, Any] = {field: "tampered"}
        altered = dataclasses.replace(shipped, **tampered)
        assert cache_findings(str(default_rules_dir()), altered) == [
            Finding("error", "knowledge-cache", "the rule base loaded through the parsed-data cache differs from one parsed now")
        ], field


def test_a_modality_change_after_an_engine_fault_is_still_found() -> None:
    from guidance_rules.errors import EngineError

    def gap_then_change(values: Mapping[str, Any]) -> Any:
        available = list(values["available_modalities"])
        if available == []:
            raise EngineError("gap")
        ev = REC.evaluate(values)
        return dataclasses.replace(ev, modality=LM) if available == ["ultrasound"] else ev

    found = equipment_findings(Holder(kb_with(sites={"hip": KB.sites["hip"]}), gap_then_change), set())  # type: ignore[arg-type]
    assert [f.case for f in found] == [{"site": "hip", "injectate": i} for i in CASE_FIELDS_INJECTATES]


def test_a_stale_cache_entry_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rule_copy: Callable[..., Path]) -> None:
    """A parsed-data cache entry whose content differs from the files (a tampered or stale cache):
    the rule base loaded through it differs from one parsed now."""
    import json

    monkeypatch.setenv("GUIDANCE_RULES_CACHE_DIR", str(tmp_path / "cache"))
    folder = rule_copy("ruleset.yaml", lambda data: None)
    assert cache_findings(str(folder), load(folder)) == []  # the first load fills the cache
    [entry] = (tmp_path / "cache").glob("rules-*.json")
    data = json.loads(entry.read_text(encoding="utf-8"))
    tampered = data["files"]["imaging.yaml"]["rules"][0]
    tampered["title"] = "Tampered in the cache"
    entry.write_text(json.dumps(data), encoding="utf-8")
    cached = load(folder)
    assert cached.rule(tampered["id"]).title == "Tampered in the cache"  # the load was answered from the cache
    assert [f.check for f in cache_findings(str(folder), cached)] == ["knowledge-cache"]


def test_chunks_past_the_end_of_the_space_are_said_as_such() -> None:
    """Chunks that end beyond the space raise, naming the cases past its end (the message named a
    reversed, empty range, "cases 12..9 were never evaluated")."""
    with pytest.raises(AuditError, match=r"^space ten: cases 10\.\.11 are past the end of the space"):
        assert_complete(TEN, [(0, 10), (10, 12)], bytes(10))


def test_at_most_max_listed_findings_are_listed_then_counted() -> None:
    from guidance_rules.audit.check import MAX_LISTED, _capped

    def many(n: int) -> list[Finding]:
        return [Finding("error", "monotone", f"m{i}") for i in range(n)]

    assert _capped(many(MAX_LISTED)) == many(MAX_LISTED)
    assert _capped(many(MAX_LISTED + 3)) == [*many(MAX_LISTED), Finding("error", "monotone", "3 further monotone findings not listed")]
    assert _capped([]) == []
