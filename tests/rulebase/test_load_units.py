"""Loading at its own layer, on a small rule base written here (not the shipped one, so that no
clinical edit moves these tests): every record carries what its file says, every cross-reference
is checked with the file, rule and key named, and strata of derived facts are ordered (a cycle
refused). The shipped rule base's own load errors are in test_load.py."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from guidance_rules.errors import RuleFileError
from guidance_rules.model import Category, Citation, Modality
from guidance_rules.rulebase import load as loading
from guidance_rules.rulebase.conditions import Test as Check
from guidance_rules.rulebase.domain import Rule
from guidance_rules.rulebase.load import (
    check_schema,
    cite,
    default_rules_dir,
    derivation_levels,
    in_scope,
    load,
    read_rule_file,
    scope_key,
    scope_of,
)
from guidance_rules.rulebase.schemas import RuleFileSpec
from tests.conftest import ROOT

RATE_ALL = {
    "ultrasound": "usually_appropriate",
    "fluoroscopy": "may_be_appropriate",
    "both": "usually_not_appropriate",
    "landmark": "may_be_appropriate",
}


def rule(rid: str, when: dict[str, Any], then: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "id": rid,
        "title": f"title of {rid}",
        "version": 1,
        "status": "active",
        "when": when,
        "then": then,
        "conclusion": f"conclusion of {rid}",
        "rationale": f"rationale of {rid}",
        "sources": [{"source": "article", "locator": "P1"}],
        "examples": {"fires": [{"site": "knee", "injectate": "prp"}]},
        **extra,
    }


MINI: dict[str, Any] = {
    "ruleset.yaml": {"name": "mini", "version": "0.1", "rule_files": ["derive.yaml", "rest.yaml"]},
    "sources.yaml": {
        "sources": {
            "article": {
                "title": "The article",
                "kind": "article",
                "propositions": {
                    "P1": {"section": "First", "summary": "one"},
                    "P2": {"section": "Second", "summary": "two", "scope": {"site": ["knee"]}},
                },
            },
            "study": {"title": "A study", "kind": "study", "scope": [{"site": ["hip"]}, {"region": "spinal"}]},
            "review": {"title": "A review", "kind": "review"},
        }
    },
    "facts.yaml": {"facts": {"easy": "easy to reach", "hard": "hard to reach", "needed": "landmark justified", "spare": "never derived"}},
    "sites.yaml": {
        "identity_fields": ["region", "tissue"],
        "sites": {
            "knee": {
                "title": "Knee joint",
                "defaults": {"region": "peripheral", "depth": "superficial", "tissue": "joint", "target_size": "large", "palpable": True},
                "why": "a large joint",
                "landmark_evidence": "close",
                "fixed": ["region", "tissue"],
                "evidence": [
                    {
                        "measure": "accuracy",
                        "landmark": "90%",
                        "source": "study",
                        "locator": "table 1",
                        "points": ["accuracy"],
                        "when": {"approach": "unspecified"},
                    },
                    {"measure": "summary", "source": "article", "locator": "P2", "points": ["summary"]},
                ],
            },
            "hip": {
                "title": "Hip joint",
                "defaults": {"region": "peripheral", "depth": "deep", "tissue": "joint", "anatomy_variance": ["obesity"]},
                "why": "a deep joint",
                "landmark_evidence": "gap",
            },
        },
    },
    "defaults.yaml": {
        "tissue": {"bursa": {"target_size": "small"}},
        "fields": {
            "target_size": "small",
            "palpable": False,
            "anatomy_variance": [],
            "near_neurovascular": False,
            "precise_plane": False,
            "compartment_specific": False,
            "bone_obscures_path": False,
            "contrast_confirmation": False,
            "available_modalities": ["ultrasound", "fluoroscopy"],
            "approach": "unspecified",
        },
    },
    "constraints.yaml": {
        "constraints": [{"id": "C-DEEP-PALPABLE", "when": {"depth": "deep", "palpable": True}, "message": "deep is not palpable"}]
    },
    "policy.yaml": {
        "policy": {
            "id": "POLICY",
            "title": "Choosing",
            "version": 3,
            "preference": ["ultrasound", "fluoroscopy", "both", "landmark"],
            "landmark_requires": "needed",
            "conclusion": "the policy's conclusion",
            "rationale": "the policy's rationale",
            "sources": [{"source": "article", "locator": "P1"}, {"source": "review", "locator": "p. 3"}],
            "tie_breaks": [
                {
                    "prefer": "ultrasound",
                    "over": ["fluoroscopy"],
                    "reason": "no radiation needed",
                    "sources": [{"source": "review", "locator": "p. 4"}],
                    "figures": ["accuracy"],
                },
                {
                    "prefer": "fluoroscopy",
                    "over": ["both", "landmark"],
                    "reason": "one modality is enough",
                    "sources": [{"source": "article", "locator": "P2"}],
                },
            ],
            "summary_points": ["accuracy"],
        }
    },
    "derive.yaml": {
        "rules": [
            rule("D-EASY", {"depth": "superficial"}, {"derive": "easy"}),
            rule("D-NEEDED", {"easy": True, "hard": False}, {"derive": "needed"}),
            rule("D-HARD", {"depth": ["intermediate", "deep"]}, {"derive": "hard"}),
            rule("D-HARD-TOO", {"needed": False, "site": "hip"}, {"derive": "hard"}, status="draft"),
        ]
    },
    "rest.yaml": {
        "rules": [
            rule(
                "R-ALL", {}, {"rate": RATE_ALL}, sources=[{"source": "study", "locator": "table 2"}, {"source": "article", "locator": "P2"}]
            ),
            rule(
                "R-EASY",
                {"easy": True},
                {"rate": {"landmark": "usually_appropriate"}},
                overrides=["R-ALL"],
                figures=["accuracy"],
                version=4,
            ),
            rule("DOC-ONE", {"modality": "ultrasound"}, {"documentation": "record the image"}),
            rule("CAU-ONE", {"available_modalities": {"not": ["fluoroscopy"]}}, {"caution": "no fluoroscopy here"}, bottom_line=True),
            rule(
                "Q-ONE",
                {"anatomy_variance": ["obesity"]},
                {"question": "how deep?"},
                status="retired",
                examples={"fires": [{"site": "hip", "injectate": "prp"}], "silent": [{"site": "knee", "injectate": "prp"}]},
            ),
        ]
    },
}

Edit = Callable[[dict[str, Any]], None]


@pytest.fixture
def mini(tmp_path: Path) -> Callable[..., Path]:
    """Write the small rule base, with edits (file name -> function changing its data), and return its folder."""

    def make(**edits: Edit) -> Path:
        folder = tmp_path / "mini"
        folder.mkdir(exist_ok=True)
        for name, data in MINI.items():
            data = copy.deepcopy(data)
            edit = edits.get(name.removesuffix(".yaml").replace("-", "_"))
            if edit is not None:
                edit(data)
            (folder / name).write_text(yaml.safe_dump(data, sort_keys=False))
        return folder

    return make


def refused(folder: Path) -> RuleFileError:
    with pytest.raises(RuleFileError) as caught:
        load(folder)
    return caught.value


def where(error: RuleFileError) -> tuple[str, str | None, str | None]:
    return error.file, error.rule, error.key


def find(data: dict[str, Any], rid: str) -> dict[str, Any]:
    (found,) = [r for r in data["rules"] if r["id"] == rid]
    return found


# -- what a load returns -------------------------------------------------------------------------


def test_the_knowledge_base_carries_what_the_files_say(mini: Callable[..., Path]) -> None:
    folder = mini()
    kb = load(folder, cache=False)
    assert (kb.directory, kb.name, kb.version) == (folder, "mini", "0.1")
    assert kb.digest.startswith("sha256:") and len(kb.digest) == 71
    assert kb.identity_fields == ("region", "tissue")
    assert kb.tissue_defaults == {"bursa": {"target_size": "small"}}
    assert kb.field_defaults == MINI["defaults.yaml"]["fields"]
    assert kb.facts == MINI["facts.yaml"]["facts"]
    assert list(kb.sources) == ["article", "study", "review"] and kb.sources["study"].title == "A study"
    assert [c.id for c in kb.constraints] == ["C-DEEP-PALPABLE"]
    assert kb.constraints[0].message == "deep is not palpable"
    assert kb.constraints[0].tests == (Check("depth", frozenset({"deep"})), Check("palpable", frozenset({True})))


def test_a_load_without_the_cache_neither_reads_nor_writes_it(
    mini: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("GUIDANCE_RULES_CACHE_DIR", str(cache))
    monkeypatch.delenv("GUIDANCE_RULES_CACHE", raising=False)
    folder = mini()
    load(folder, cache=False)
    assert not cache.exists()
    first = load(folder)
    assert len(list(cache.glob("rules-*.json"))) == 1
    assert [r.id for r in load(folder, cache=False).rules] == [r.id for r in first.rules]


def test_a_site_carries_its_defaults_evidence_and_parsed_evidence_conditions(mini: Callable[..., Path]) -> None:
    kb = load(mini())
    knee, hip = kb.sites["knee"], kb.sites["hip"]
    assert (knee.key, knee.title, knee.why, knee.landmark_evidence, knee.fixed) == (
        "knee",
        "Knee joint",
        "a large joint",
        "close",
        ("region", "tissue"),
    )
    assert knee.defaults == MINI["sites.yaml"]["sites"]["knee"]["defaults"]
    assert [(e.source, e.locator, e.points) for e in knee.evidence] == [
        ("study", "table 1", ("accuracy",)),
        ("article", "P2", ("summary",)),
    ]
    assert knee.evidence_tests == ((Check("approach", frozenset({"unspecified"})),), ())
    assert (hip.landmark_evidence, hip.fixed, hip.evidence, hip.evidence_tests) == ("gap", (), (), ())
    assert hip.defaults["anatomy_variance"] == ["obesity"]


def test_the_policy_carries_its_order_citations_and_tie_breaks(mini: Callable[..., Path]) -> None:
    policy = load(mini()).policy
    assert (policy.id, policy.title, policy.version) == ("POLICY", "Choosing", 3)
    assert policy.preference == (Modality.ULTRASOUND, Modality.FLUOROSCOPY, Modality.BOTH, Modality.LANDMARK)
    assert (policy.landmark_requires, policy.conclusion, policy.rationale) == (
        "needed",
        "the policy's conclusion",
        "the policy's rationale",
    )
    assert policy.sources == (Citation(source="article", locator="First - P1"), Citation(source="review", locator="p. 3"))
    assert policy.cited == (("article", "P1"), ("review", "p. 3"))
    first, second = policy.tie_breaks
    assert (first.prefer, first.over, first.reason, first.figures) == (
        Modality.ULTRASOUND,
        (Modality.FLUOROSCOPY,),
        "no radiation needed",
        ("accuracy",),
    )
    assert first.sources == (Citation(source="review", locator="p. 4"),)
    assert (second.prefer, second.over, second.figures) == (Modality.FLUOROSCOPY, (Modality.BOTH, Modality.LANDMARK), ())
    assert second.sources == (Citation(source="article", locator="Second - P2"),)
    assert policy.summary_points == ("accuracy",)


def test_each_rule_carries_what_its_entry_says(mini: Callable[..., Path]) -> None:
    kb = load(mini())
    assert [r.id for r in kb.rules] == ["D-EASY", "D-NEEDED", "D-HARD", "R-ALL", "R-EASY", "DOC-ONE", "CAU-ONE"]
    assert [r.id for r in kb.inactive] == ["D-HARD-TOO", "Q-ONE"]
    everything = {r.id: r for r in (*kb.rules, *kb.inactive)}
    assert [
        everything[i].index for i in ("D-EASY", "D-NEEDED", "D-HARD", "D-HARD-TOO", "R-ALL", "R-EASY", "DOC-ONE", "CAU-ONE", "Q-ONE")
    ] == list(range(9))
    assert all(kb.rule(i) is r for i, r in everything.items())
    easy = kb.rule("R-EASY")
    assert (easy.title, easy.version, easy.status, easy.file, easy.kind) == ("title of R-EASY", 4, "active", "rest.yaml", "rate")
    assert (easy.derive, easy.text, easy.overrides, easy.figures, easy.bottom_line) == (None, None, ("R-ALL",), ("accuracy",), False)
    assert easy.rate == {Modality.LANDMARK: Category.USUALLY_APPROPRIATE}
    assert (easy.conclusion, easy.rationale) == ("conclusion of R-EASY", "rationale of R-EASY")
    assert easy.tests == (Check("easy", frozenset({True})),)
    assert easy.fires == ({"site": "knee", "injectate": "prp"},) and easy.silent == ()
    every = kb.rule("R-ALL")
    assert every.tests == () and len(every.rate) == 4 and every.overrides == ()
    assert every.sources == (Citation(source="study", locator="table 2"), Citation(source="article", locator="Second - P2"))
    assert every.cited == (("study", "table 2"), ("article", "P2"))
    derive = kb.rule("D-NEEDED")
    assert (derive.kind, derive.derive, derive.rate, derive.text, derive.file) == ("derive", "needed", {}, None, "derive.yaml")
    assert derive.tests == (Check("easy", frozenset({True})), Check("hard", frozenset({False})))
    doc, caution, question = kb.rule("DOC-ONE"), kb.rule("CAU-ONE"), everything["Q-ONE"]
    assert (doc.kind, doc.text, doc.derive, doc.bottom_line) == ("documentation", "record the image", None, False)
    assert doc.tests == (Check("modality", frozenset({"ultrasound"})),)
    assert (caution.kind, caution.text, caution.bottom_line) == ("caution", "no fluoroscopy here", True)
    assert caution.tests == (Check("available_modalities", frozenset({"fluoroscopy"}), negated=True, is_list=True),)
    assert (question.kind, question.text, question.status) == ("question", "how deep?", "retired")
    assert question.silent == ({"site": "knee", "injectate": "prp"},)


def test_scopes_are_kept_for_whole_sources_and_single_propositions(mini: Callable[..., Path]) -> None:
    kb = load(mini())
    assert kb.scopes == {
        "study": ((Check("site", frozenset({"hip"})),), (Check("region", frozenset({"spinal"})),)),
        "article#Second - P2": ((Check("site", frozenset({"knee"})),),),
    }
    p1, p2 = cite(kb.sources, "article", "P1"), cite(kb.sources, "article", "P2")
    study = Citation(source="study", locator="anything")
    assert scope_key(p2) == "article#Second - P2"
    assert (scope_of(kb, p1), scope_of(kb, Citation(source="review", locator="x"))) == (None, None)
    assert scope_of(kb, p2) == kb.scopes["article#Second - P2"] and scope_of(kb, study) == kb.scopes["study"]
    case = {"site": "knee", "region": "peripheral"}
    assert in_scope(kb, p1, case) and in_scope(kb, p2, case) and not in_scope(kb, study, case)
    assert in_scope(kb, study, {"site": "hip", "region": "peripheral"}) and in_scope(kb, study, {"site": "", "region": "spinal"})
    assert not in_scope(kb, p2, {"site": "hip", "region": "peripheral"})


def test_a_proposition_is_cited_with_its_section_and_other_locators_as_written(mini: Callable[..., Path]) -> None:
    kb = load(mini())
    assert cite(kb.sources, "article", "P1") == Citation(source="article", locator="First - P1")
    assert cite(kb.sources, "article", "elsewhere") == Citation(source="article", locator="elsewhere")
    assert cite(kb.sources, "study", "P1") == Citation(source="study", locator="P1")


# -- derivation strata ---------------------------------------------------------------------------


def test_facts_yaml_is_refused_with_a_fact_named_like_an_engine_key(mini: Callable[..., Path]) -> None:
    def rename(data: dict[str, Any]) -> None:
        data["facts"]["stratum"] = "a planted name the engine gives its own facts"

    assert where(refused(mini(facts=rename))) == ("facts.yaml", None, "facts.stratum")


def test_a_derivation_sits_one_above_the_derived_facts_it_reads(mini: Callable[..., Path]) -> None:
    kb = load(mini())
    assert derivation_levels(kb.rules, kb.facts) == {"D-EASY": 1, "D-NEEDED": 2, "D-HARD": 1}


def stub(rid: str, reads: dict[str, bool], derive: str | None, kind: str = "derive") -> Rule:
    return Rule(
        id=rid, title=rid, version=1, status="active", file=f"{rid}.yaml", index=0,
        tests=tuple(Check(f, frozenset({v})) for f, v in reads.items()), kind=kind, derive=derive, rate={}, text=None,
        overrides=(), conclusion="", rationale="", sources=(), cited=(), figures=(), bottom_line=False, fires=(), silent=(),
    )  # fmt: skip


def test_a_fact_derived_by_several_rules_is_complete_after_the_highest() -> None:
    facts = {name: "" for name in ("a", "b", "c", "d", "e", "never")}
    rules = [
        stub("E", {"never": True}, "e"),  # a declared fact no rule derives: complete from the start
        stub("ODD", {"d": True}, "a", kind="rate"),  # only derivation rules derive, whatever else a record carries
        stub("A", {"depth": True}, "a"),
        stub("B", {"a": True}, "b"),
        stub("C1", {"a": True}, "c"),
        stub("C2", {"b": False, "palpable": True}, "c"),
        stub("D", {"c": True, "a": False}, "d"),
        stub("RATE", {"d": True}, None, kind="rate"),
        stub("NO-FACT", {"a": True}, None),
    ]
    assert derivation_levels(rules, facts) == {"E": 1, "A": 1, "B": 2, "C1": 2, "C2": 3, "D": 4, "NO-FACT": 2}


def test_a_cycle_names_its_facts_and_the_first_rule_deriving_one() -> None:
    facts = {name: "" for name in ("a", "b", "c")}
    rules = [stub("X", {"c": True}, "c"), stub("A", {"b": True}, "a"), stub("B", {"c": True}, "b"), stub("C", {"a": False}, "c")]
    with pytest.raises(RuleFileError) as caught:
        derivation_levels(rules, facts)
    assert where(caught.value) == ("X.yaml", "X", "when")
    assert str(caught.value) == "X.yaml, rule X, key 'when': cycle among derived facts: c -> c"
    with pytest.raises(RuleFileError) as caught:
        derivation_levels(rules[1:], facts)
    assert where(caught.value) == ("B.yaml", "B", "when")  # A reads b, which B derives from c, from a: b is met again first
    assert str(caught.value).endswith("cycle among derived facts: b -> c -> a -> b")


# -- refusals: the rule files --------------------------------------------------------------------


def test_a_missing_directory_is_named(tmp_path: Path) -> None:
    error = refused(tmp_path / "nowhere")
    assert where(error) == (str(tmp_path / "nowhere"), None, None)
    assert str(error) == f"{tmp_path / 'nowhere'}: rule directory not found"


def test_a_rule_id_given_twice_names_the_other_file(mini: Callable[..., Path]) -> None:
    error = refused(mini(rest=lambda d: d["rules"].append(rule("D-EASY", {}, {"documentation": "again"}))))
    assert where(error) == ("rest.yaml", "D-EASY", "id")
    assert str(error) == "rest.yaml, rule D-EASY, key 'id': duplicate rule id (also in derive.yaml)"


@pytest.mark.parametrize("then", [{}, {"derive": "easy", "documentation": "x"}, {"caution": "x", "question": "y"}])
def test_then_has_exactly_one_conclusion(mini: Callable[..., Path], then: dict[str, Any]) -> None:
    error = refused(mini(rest=lambda d: find(d, "DOC-ONE").update(then=then)))
    assert where(error) == ("rest.yaml", "DOC-ONE", "then")
    assert str(error).endswith(": 'then' must have exactly one of derive, rate, documentation, caution, question")


def test_a_derived_fact_must_be_declared(mini: Callable[..., Path]) -> None:
    error = refused(mini(derive=lambda d: find(d, "D-EASY")["then"].update(derive="simple")))
    assert where(error) == ("derive.yaml", "D-EASY", "then.derive")
    assert str(error).endswith(": 'simple' is not declared in facts.yaml; declared: easy, hard, needed, spare")


def test_a_rating_rule_must_rate_something(mini: Callable[..., Path]) -> None:
    error = refused(mini(rest=lambda d: find(d, "R-EASY")["then"].update(rate={})))
    assert where(error) == ("rest.yaml", "R-EASY", "then.rate")
    assert str(error).endswith(": 'rate' must rate at least one modality")


@pytest.mark.parametrize(
    ("rid", "when", "key", "message"),
    [
        ("R-EASY", {"modality": "ultrasound"}, "when.modality", "unknown field 'modality'"),  # the chosen modality: output rules only
        ("R-EASY", {"available_modalities": ["ultrasound"]}, "when.available_modalities", "unknown field"),  # equipment: output rules only
        ("D-EASY", {"depth": "shallow"}, "when.depth", "'shallow' is not a value of depth"),
        ("DOC-ONE", {"size": "small"}, "when.size", "unknown field 'size'"),
    ],
)
def test_a_condition_outside_its_rules_vocabulary_names_the_field(
    mini: Callable[..., Path], rid: str, when: dict[str, Any], key: str, message: str
) -> None:
    file = "derive.yaml" if rid.startswith("D-") else "rest.yaml"
    edit = {file.removesuffix(".yaml"): lambda d: find(d, rid).update(when=when)}
    error = refused(mini(**edit))
    assert where(error) == (file, rid, key)
    assert str(error).startswith(f"{file}, rule {rid}, key '{key}': {message}")


def test_a_rule_file_against_its_schema_names_the_file(mini: Callable[..., Path]) -> None:
    error = refused(mini(rest=lambda d: find(d, "R-EASY").update(version=0)))
    assert where(error) == ("rest.yaml", "R-EASY", "version")


def test_an_output_rule_may_read_equipment_the_modality_and_facts(mini: Callable[..., Path]) -> None:
    when = {
        "modality": ["both", "landmark"],
        "available_modalities": ["ultrasound"],
        "needed": True,
        "landmark_evidence": "gap",
        "site": "",
    }
    kb = load(mini(rest=lambda d: find(d, "CAU-ONE").update(when=when)))
    assert [t.field for t in kb.rule("CAU-ONE").tests] == list(when)


def test_a_citation_must_name_a_known_source_and_proposition(mini: Callable[..., Path]) -> None:
    error = refused(mini(rest=lambda d: find(d, "R-EASY")["sources"].append({"source": "blog", "locator": "x"})))
    assert where(error) == ("rest.yaml", "R-EASY", "sources.1")
    assert str(error).endswith(": unknown source 'blog'; add it to sources.yaml")
    error = refused(mini(rest=lambda d: find(d, "R-ALL")["sources"].append({"source": "article", "locator": "P9"})))
    assert where(error) == ("rest.yaml", "R-ALL", "sources.2")
    assert str(error).endswith(": 'P9' is not a proposition of 'article'; valid: P1, P2")


def test_a_source_without_propositions_takes_any_locator(mini: Callable[..., Path]) -> None:
    kb = load(mini(rest=lambda d: find(d, "R-EASY").update(sources=[{"source": "review", "locator": "chapter 9"}])))
    assert kb.rule("R-EASY").sources == (Citation(source="review", locator="chapter 9"),)


def test_overrides_name_a_known_rating_rule_from_a_rating_rule(mini: Callable[..., Path]) -> None:
    error = refused(mini(rest=lambda d: find(d, "R-EASY").update(overrides=["R-NONE"])))
    assert where(error) == ("rest.yaml", "R-EASY", "overrides")
    assert str(error).endswith(": overrides unknown rule 'R-NONE'")
    error = refused(mini(rest=lambda d: find(d, "R-EASY").update(overrides=["DOC-ONE"])))
    assert where(error) == ("rest.yaml", "R-EASY", "overrides")
    assert str(error).endswith(": only rating rules may override rating rules")
    error = refused(mini(rest=lambda d: find(d, "DOC-ONE").update(overrides=["R-ALL"])))
    assert where(error) == ("rest.yaml", "DOC-ONE", "overrides")


def test_a_figure_must_be_a_point_some_site_gives_for_active_and_inactive_rules(mini: Callable[..., Path]) -> None:
    for rid in ("R-EASY", "Q-ONE"):
        error = refused(mini(rest=lambda d, rid=rid: find(d, rid).update(figures=["accuracy", "speed"])))
        assert where(error) == ("rest.yaml", rid, "figures")
        assert str(error).endswith(": no site gives evidence for the point 'speed'; known: accuracy, summary")


def test_a_rule_file_not_listed_is_refused(mini: Callable[..., Path]) -> None:
    folder = mini()
    (folder / "zz-extra.yaml").write_text("rules: []\n")
    (folder / "aa-extra.yaml").write_text("rules: []\n")
    (folder / "invariants.yaml").write_text("invariants: []\n")  # read by the audit: not a stray file
    (folder / "fhir-mapping.yaml").write_text("{}\n")
    error = refused(folder)
    assert where(error) == ("ruleset.yaml", None, "rule_files")
    assert str(error) == "ruleset.yaml, key 'rule_files': aa-extra.yaml, zz-extra.yaml would be ignored; list it under rule_files"


def test_the_limits_are_checked_at_load(mini: Callable[..., Path]) -> None:
    wide = {
        f: [True, False]
        for f in (
            "palpable",
            "near_neurovascular",
            "precise_plane",
            "compartment_specific",
            "bone_obscures_path",
            "contrast_confirmation",
            "easy",
            "hard",
            "needed",
            "spare",
        )
    }
    wide |= {
        "depth": ["deep", "superficial"],
        "region": ["peripheral", "spinal"],
        "tissue": ["joint", "nerve"],
        "target_size": ["large", "small"],
        "injectate": ["prp", "other"],
    }
    error = refused(mini(rest=lambda d: find(d, "DOC-ONE").update(when=wide)))
    assert where(error) == ("rest.yaml", "DOC-ONE", "when")


# -- refusals: the other files ---------------------------------------------------------------------


def test_the_policy_must_require_a_declared_fact(mini: Callable[..., Path]) -> None:
    error = refused(mini(policy=lambda d: d["policy"].update(landmark_requires="justified")))
    assert where(error) == ("policy.yaml", "POLICY", "landmark_requires")
    assert str(error).endswith(": 'justified' is not declared in facts.yaml")


@pytest.mark.parametrize("preference", [["ultrasound", "fluoroscopy", "both"], ["ultrasound", "fluoroscopy", "both", "landmark", "both"]])
def test_the_policy_must_order_each_modality_once(mini: Callable[..., Path], preference: list[str]) -> None:
    error = refused(mini(policy=lambda d: d["policy"].update(preference=preference)))
    assert where(error) == ("policy.yaml", "POLICY", "preference")
    assert str(error).endswith(": preference must list each modality once: ultrasound, fluoroscopy, both, landmark")


def test_a_tie_break_citation_is_checked(mini: Callable[..., Path]) -> None:
    error = refused(mini(policy=lambda d: d["policy"]["tie_breaks"][1]["sources"].append({"source": "blog", "locator": "x"})))
    assert where(error) == ("policy.yaml", "POLICY", "tie_breaks.1")
    error = refused(mini(policy=lambda d: d["policy"]["sources"].append({"source": "article", "locator": "P7"})))
    assert where(error) == ("policy.yaml", "POLICY", "sources")


def test_site_defaults_and_evidence_are_checked(mini: Callable[..., Path]) -> None:
    error = refused(mini(sites=lambda d: d["sites"]["hip"]["defaults"].update(depth="shallow")))
    assert where(error) == ("sites.yaml", None, "sites.hip.defaults.depth")
    assert str(error).endswith(": 'shallow' is not a value of depth; valid: superficial, intermediate, deep")
    error = refused(mini(sites=lambda d: d["sites"]["hip"]["defaults"].update(reach="far")))
    assert where(error) == ("sites.yaml", None, "sites.hip.defaults.reach")
    assert "unknown field 'reach'; valid fields: region, depth, tissue" in str(error)
    error = refused(mini(sites=lambda d: d["sites"]["knee"]["evidence"][1].update(source="blog")))
    assert where(error) == ("sites.yaml", None, "sites.knee.evidence.1")
    error = refused(mini(sites=lambda d: d["sites"]["knee"]["evidence"][0].update(when={"modality": "both"})))
    assert where(error) == ("sites.yaml", None, "sites.knee.evidence.0.when.modality")
    error = refused(mini(sites=lambda d: d["sites"]["knee"].update(fixed=["region", "reach"])))
    assert where(error) == ("sites.yaml", None, "sites.knee.fixed")
    assert str(error).endswith(": unknown field 'reach'; valid fields: " + ", ".join(loading.CASE_FIELDS))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("true", "'true' is not a value of palpable; valid: False, True"),
        (1, "'1' is not a value of palpable; valid: False, True"),
        (["obesity"], "'['obesity']' is not a value of palpable; valid: False, True"),
    ],
)
def test_a_default_must_be_a_value_the_case_could_hold(mini: Callable[..., Path], value: Any, message: str) -> None:
    error = refused(mini(defaults=lambda d: d["fields"].update(palpable=value)))
    assert where(error) == ("defaults.yaml", None, "fields.palpable")
    assert str(error).endswith(message)


def test_list_defaults_are_checked_item_by_item(mini: Callable[..., Path]) -> None:
    error = refused(mini(defaults=lambda d: d["tissue"]["bursa"].update(anatomy_variance=["obesity", "thin"])))
    assert where(error) == ("defaults.yaml", None, "tissue.bursa.anatomy_variance")
    assert str(error).endswith(": 'thin' is not a value of anatomy_variance; valid: obesity, prior_surgery, atypical_anatomy, effusion")
    kb = load(mini(defaults=lambda d: d["fields"].update(anatomy_variance=["obesity", "effusion"])))
    assert kb.field_defaults["anatomy_variance"] == ["obesity", "effusion"]


@pytest.mark.parametrize(
    ("edit", "file", "key"),
    [
        ({"ruleset": lambda d: d.update(rule_files=[])}, "ruleset.yaml", "rule_files"),
        ({"sources": lambda d: d["sources"]["study"].pop("title")}, "sources.yaml", "sources.study.title"),
        ({"facts": lambda d: d.update(facts=["easy"])}, "facts.yaml", "facts"),
        ({"sites": lambda d: d["sites"]["hip"].update(landmark_evidence="far")}, "sites.yaml", "sites.hip.landmark_evidence"),
        ({"defaults": lambda d: d.pop("tissue")}, "defaults.yaml", "tissue"),
        ({"policy": lambda d: d["policy"].update(version="three")}, "policy.yaml", "policy.version"),
        ({"constraints": lambda d: d["constraints"][0].update(when={})}, "constraints.yaml", "constraints.0.when"),
    ],
)
def test_each_data_file_is_checked_against_its_schema(mini: Callable[..., Path], edit: dict[str, Edit], file: str, key: str) -> None:
    assert where(refused(mini(**edit))) == (file, None, key)


def test_a_constraint_condition_is_checked_against_the_case_vocabulary(mini: Callable[..., Path]) -> None:
    for when, key in (({"depth": "shallow"}, "when.depth"), ({"easy": True}, "when.easy"), ({"modality": "both"}, "when.modality")):
        error = refused(mini(constraints=lambda d, when=when: d["constraints"][0].update(when=when)))
        assert where(error) == ("constraints.yaml", "C-DEEP-PALPABLE", key)
        assert str(error).startswith(f"constraints.yaml, rule C-DEEP-PALPABLE, key '{key}': ")
        assert str(error).endswith("valid values: superficial, intermediate, deep") or "unknown field" in str(error)


def test_a_scope_is_checked_against_the_case_vocabulary(mini: Callable[..., Path]) -> None:
    error = refused(mini(sources=lambda d: d["sources"]["study"]["scope"][1].update(region="lumbar")))
    assert where(error) == ("sources.yaml", None, "sources.study.scope.1.region")
    error = refused(mini(sources=lambda d: d["sources"]["article"]["propositions"]["P2"].update(scope={"easy": True})))
    assert where(error) == ("sources.yaml", None, "sources.article.propositions.P2.scope.0.easy")
    assert "unknown field 'easy'" in str(error)


# -- schemas -------------------------------------------------------------------------------------------


def test_a_schema_error_names_the_rule_by_id_or_position_and_the_key() -> None:
    good = MINI["derive.yaml"]["rules"][0]
    cases: list[tuple[Any, str | None, str | None]] = [
        ({"rules": [good, {**good, "id": "D-BAD", "version": 0}]}, "D-BAD", "version"),
        ({"rules": [good, {k: v for k, v in good.items() if k != "id"}]}, "#2", "id"),
        ({"rules": [good, "just text"]}, "#2", None),
        ({"rules": [{**good, "then": {"derive": "x", "extra": 1}}]}, "D-EASY", "then.extra"),
        ({"rules": "none"}, None, "rules"),
        ({"other": []}, None, "rules"),
        (["rules"], None, None),
    ]
    for data, rid, key in cases:
        with pytest.raises(RuleFileError) as caught:
            check_schema("file.yaml", RuleFileSpec, data)
        assert where(caught.value) == ("file.yaml", rid, key), data
    with pytest.raises(RuleFileError) as caught:
        check_schema("file.yaml", RuleFileSpec, cases[0][0])
    assert str(caught.value) == "file.yaml, rule D-BAD, key 'version': Input should be greater than or equal to 1"


def test_a_valid_file_is_returned_as_its_schema() -> None:
    spec = check_schema("file.yaml", RuleFileSpec, {"rules": [MINI["derive.yaml"]["rules"][0]]})
    assert isinstance(spec, RuleFileSpec) and spec.rules[0].id == "D-EASY"


# -- where the rule base is ------------------------------------------------------------------------


def test_a_checkout_uses_its_rules_folder_and_a_wheel_its_packaged_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert default_rules_dir() == ROOT / "rules"
    package = tmp_path / "site" / "guidance_rules"
    (package / "rulebase").mkdir(parents=True)
    monkeypatch.setattr(loading, "__file__", str(package / "rulebase" / "load.py"))
    assert default_rules_dir() == tmp_path / "site" / "rules"
    (package / "rules").mkdir()
    assert default_rules_dir() == package / "rules"


def test_a_data_file_of_another_layer_is_read_as_rule_files_are(mini: Callable[..., Path]) -> None:
    folder = mini()
    (folder / "fhir-mapping.yaml").write_text("codes: {a: 1}\n")
    assert read_rule_file(folder, "fhir-mapping.yaml") == {"codes": {"a": 1}}
    (folder / "twice.yaml").write_text("a: 1\na: 2\n")
    with pytest.raises(RuleFileError, match="given twice"):
        read_rule_file(folder, "twice.yaml")
