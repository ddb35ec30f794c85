"""The explanation a clinician reads (issue 19): citations that fit the case, overrides shown as
overrides, grouped reasons, the tie-break said for the case, and the bottom line."""

from __future__ import annotations

import itertools
import re
from typing import Any

import yaml

from guidance_rules import recommend
from guidance_rules.audit.explanation import explanation_problems
from guidance_rules.model import Recommendation, Step
from guidance_rules.recommendation.explain import Parts
from guidance_rules.recommendation.recommender import Recommender
from guidance_rules.recommendation.whatif import inputs_that_matter, what_if
from guidance_rules.rulebase.load import default_knowledge, in_scope, load
from guidance_rules.rulebase.resolve import resolve
from tests.conftest import find_rule


def answer(case: dict[str, Any]) -> Recommendation | None:
    """The answer, or None for a case the constraints refuse (an effusion at a nerve)."""
    try:
        return recommend(case)
    except ValueError:
        return None


def step_of(rec: Recommendation, rule: str) -> Step:
    return next(s for s in rec.reasoning if s.rule == rule or any(r.rule == rule for r in s.reasons))


def cited_by(rec: Recommendation, rule: str) -> set[str]:
    step = step_of(rec, rule)
    reason = next((r for r in step.reasons if r.rule == rule), None)
    return {c.source for c in (reason.sources if reason else step.sources)}


# -- citations chosen for the case ----------------------------------------------------------------


def test_a_site_study_is_cited_only_at_its_site() -> None:
    """The trigger-finger study is evidence for the A1 pulley, not for the sacroiliac joint."""
    assert "a1pulley2022" in cited_by(recommend({"site": "a1_pulley", "injectate": "corticosteroid"}), "LU-SMALL")
    assert "a1pulley2022" not in cited_by(recommend({"site": "sacroiliac", "injectate": "corticosteroid"}), "LU-SMALL")
    assert "hoeber2016" not in cited_by(recommend({"site": "knee", "injectate": "cell_based"}), "US-FIT-PERIPHERAL")
    assert "jee2014" not in cited_by(recommend({"site": "hip", "injectate": "corticosteroid"}), "RATE-FL-BONY")
    assert "rauch2009" not in cited_by(
        recommend({"site": "epidural_interlaminar", "injectate": "corticosteroid", "anatomy_variance": ["obesity"]}),
        "US-LIMITED-SPINAL-OBESITY",
    )


def test_a_proposition_about_one_site_is_cited_only_there() -> None:
    hip = recommend({"site": "hip", "injectate": "corticosteroid"})
    subtalar = recommend({"site": "subtalar", "injectate": "corticosteroid"})
    assert any("LM4" in c.locator for r in step_of(hip, "LU-BONE").reasons if r.rule == "LU-BONE" for c in r.sources)
    assert not any("LM4" in c.locator for r in step_of(subtalar, "LU-BONE").reasons for c in r.sources)


def test_the_landmark_step_at_a_knee_names_the_blind_accuracy_of_its_path() -> None:
    rec = recommend({"site": "knee", "injectate": "corticosteroid", "approach": "anteromedial"})
    step = step_of(rec, "RATE-LANDMARK-NOT")
    assert "anteromedial path" in step.conclusion and "72%" in step.conclusion and "75%" in step.conclusion
    assert {"hermans2011", "jackson2002"} <= {c.source for c in step.sources}
    assert "67%" not in step.conclusion  # another path's figure is not this case's
    assert all("anterolateral" not in e.measure for e in rec.evidence)


def test_every_cited_source_fits_the_case_over_the_site_space() -> None:
    rec = Recommender()
    kb = rec.knowledge
    for site in kb.sites:
        for extra in ({}, {"anatomy_variance": ["obesity"]}, {"contrast_confirmation": True}):
            values = resolve({"site": site, "injectate": "prp", **extra}, kb).values
            answer = rec.recommend({"site": site, "injectate": "prp", **extra})
            cites = [c for s in answer.reasoning for c in (*s.sources, *(c for r in s.reasons for c in r.sources))]
            assert all(in_scope(kb, c, values) for c in cites), (site, extra)


# -- overrides, grouping, the tie-break ----------------------------------------------------------


def test_an_overridden_rating_is_marked_with_the_rule_that_overrides_it() -> None:
    rec = recommend({"site": "hip", "injectate": "corticosteroid", "contrast_confirmation": True})
    fit = step_of(rec, "RATE-US-FIT")
    assert fit.overridden_by == "RATE-US-CONTRAST" and fit.conclusion.startswith("Overridden by RATE-US-CONTRAST")
    assert step_of(rec, "RATE-US-CONTRAST").overridden_by is None
    assert rec.ratings["ultrasound"].category.value == "may_be_appropriate"


def test_reasons_for_one_fact_are_one_step_and_every_fired_rule_stays() -> None:
    rec = recommend({"site": "hip", "injectate": "cell_based", "anatomy_variance": ["obesity"]})
    group = step_of(rec, "LU-BONE")
    assert [r.rule for r in group.reasons] == ["LU-DEPTH", "LU-NOT-PALPABLE", "LU-VARIANCE", "LU-NEUROVASCULAR", "LU-BONE"]
    assert all(r.sources for r in group.reasons)
    assert len(rec.reasoning) <= 10
    assert {"LU-VARIANCE", "IMG-DELIVERY-CRITICAL", "RATE-US-FIT"} <= set(rec.chain_rules())


def test_the_tie_break_is_said_for_the_case_with_sources_that_fit() -> None:
    hip = recommend({"site": "hip", "injectate": "corticosteroid"})
    policy = hip.reasoning[-1]
    assert "ionising radiation" in policy.conclusion and "Fluoroscopy is also usually appropriate" in policy.conclusion
    assert "9.8 vs 3.1" in policy.conclusion and "hip_us_fluoro" in {c.source for c in policy.sources}
    shoulder = recommend({"site": "glenohumeral", "injectate": "corticosteroid"})
    assert "ionising radiation" in shoulder.reasoning[-1].conclusion
    assert "hip_us_fluoro" not in {c.source for c in shoulder.reasoning[-1].sources}
    knee = recommend({"site": "knee", "injectate": "cell_based"})  # no tie: nothing to explain
    assert "goes first" not in knee.reasoning[-1].conclusion


# -- the bottom line ----------------------------------------------------------------------------


def test_the_bottom_line_has_the_reason_the_figure_and_the_refer_caution() -> None:
    rec = recommend({"site": "sacroiliac", "injectate": "corticosteroid", "available_modalities": ["ultrasound"]})
    summary = rec.summary
    assert summary.modality == rec.modality and summary.rules == rec.ratings[rec.modality].rules
    assert summary.figure is not None and summary.figure.source.source == "jee2014"  # the decisive rule's own figure
    assert summary.cautions and "refer" in summary.cautions[0]
    assert rec.model_dump(mode="json")["summary"]["figure"]["source"]["source"] == "jee2014"
    plain = recommend({"region": "peripheral", "depth": "deep", "tissue": "joint", "injectate": "prp"})
    assert plain.summary.figure is None and not plain.summary.cautions


# -- the audit's explanation checks fail on a planted fault ---------------------------------------


def _problems(kb: Any, case: dict[str, Any], parts: Parts | None = None) -> list[tuple[str, str]]:
    rec = Recommender(kb, cache_size=0)
    return explanation_problems(parts or Parts(kb), rec.evaluate(resolve(case, kb).values))


def test_the_audit_names_rule_source_and_case_for_a_study_cited_out_of_its_scope(rule_copy: Any) -> None:
    def plant(data: dict[str, Any]) -> None:
        find_rule(data, "CAUTION-CELL-REGULATORY")["sources"].append({"source": "a1pulley2022", "locator": "results"})

    kb = load(rule_copy("cautions.yaml", plant))
    problems = _problems(kb, {"site": "knee", "injectate": "cell_based"})
    assert ("citation-fit", next(m for c, m in problems if "CAUTION-CELL-REGULATORY cites a1pulley2022" in m)) in problems
    assert _problems(kb, {"site": "a1_pulley", "injectate": "cell_based"}) == []
    assert _problems(default_knowledge(), {"site": "knee", "injectate": "cell_based"}) == []


def test_the_audit_finds_an_overridden_rating_shown_unmarked() -> None:
    class Unmarked(Parts):
        def step(self, rule: Any, values: Any, overridden_by: str | None = None) -> Step:
            return super().step(rule, values, None)

    kb = default_knowledge()
    case = {"site": "hip", "injectate": "corticosteroid", "contrast_confirmation": True}
    assert _problems(kb, case) == []
    problems = _problems(kb, case, Unmarked(kb))
    assert (
        "override-unmarked",
        "RATE-US-FIT shows ultrasound usually_appropriate unmarked, but the answer rates it may_be_appropriate",
    ) in problems


# -- ratings from the site's own evidence (issue 19, point 5) -------------------------------------

ORDINARY = ("corticosteroid", "hyaluronic_acid", "local_anesthetic", "other", "prp")
# Every decision-table cell whose landmark rating changed, usually not -> may be appropriate
# (no recommended modality changed): the site's evidence shows blind close to guided ...
CLOSE_SITES = ("a1_pulley", "carpal_tunnel", "first_dorsal_compartment", "subacromial_bursa")
# ... and a distended joint that is superficial, large and easy to feel.
EFFUSION_JOINTS = ("knee", "elbow", "radiocarpal")


def test_landmark_is_at_least_possible_where_the_site_evidence_is_close() -> None:
    for site in CLOSE_SITES:
        for injectate in ORDINARY:
            rec = recommend({"site": site, "injectate": injectate})
            assert rec.ratings["landmark"].category.value == "may_be_appropriate", (site, injectate)
            assert rec.ratings["landmark"].rules == ("RATE-LANDMARK-CLOSE",)
            assert rec.modality.value == "ultrasound"  # the recommendation stays imaging
            assert step_of(rec, "RATE-LANDMARK-NOT").overridden_by == "RATE-LANDMARK-CLOSE"
    for case in (
        {"site": "a1_pulley", "injectate": "cell_based"},
        {"site": "a1_pulley", "injectate": "corticosteroid", "contrast_confirmation": True},
        {"site": "subacromial_bursa", "injectate": "corticosteroid", "anatomy_variance": ["obesity"]},
        {"site": "tibiotalar", "injectate": "corticosteroid"},
    ):
        assert recommend(case).ratings["landmark"].category.value == "usually_not_appropriate", case


def test_a_palpable_distended_joint_rates_landmark_possible_and_keeps_imaging() -> None:
    for site in EFFUSION_JOINTS:
        for injectate in ORDINARY:
            rec = recommend({"site": site, "injectate": injectate, "anatomy_variance": ["effusion"]})
            assert rec.ratings["landmark"].category.value == "may_be_appropriate", (site, injectate)
            assert rec.modality.value == "ultrasound"
    for case in (
        {"site": "knee", "injectate": "corticosteroid", "anatomy_variance": ["effusion", "obesity"]},
        {"site": "knee", "injectate": "corticosteroid", "anatomy_variance": ["effusion"], "approach": "anterolateral"},
        {"site": "hip", "injectate": "corticosteroid", "anatomy_variance": ["effusion"]},
    ):
        assert recommend(case).ratings["landmark"].category.value == "usually_not_appropriate", case


def test_every_site_states_what_its_evidence_shows() -> None:
    kb = default_knowledge()
    assert {s.landmark_evidence for s in kb.sites.values()} <= {"close", "gap", "unknown"}
    assert {k for k, s in kb.sites.items() if s.landmark_evidence == "close"} == {
        *CLOSE_SITES,
        "radiocarpal",
        "greater_trochanteric_bursa",
    }
    assert {s.us_fluoroscopy_evidence for s in kb.sites.values()} <= {"close", "gap", "unknown"}
    written = yaml.safe_load((kb.directory / "sites.yaml").read_text())["sites"]
    assert all("us_fluoroscopy_evidence" in site for site in written.values())  # every site reviewed, none left to the default
    assert {k for k, s in kb.sites.items() if s.us_fluoroscopy_evidence == "close"} == {*US_CLOSE_SITES, "hip"}
    assert kb.sites["lumbar_medial_branch"].us_fluoroscopy_evidence == "gap"


# The less-favoured imaging modality (issue 19, point 5): where the site's own trials show
# ultrasound close to fluoroscopy, ultrasound is may be appropriate (was usually not appropriate)
# for an ordinary patient; fluoroscopy stays recommended. These are every changed cell.
US_CLOSE_SITES = ("lumbar_facet", "sacroiliac")
US_CLOSE_INJECTATES = ("corticosteroid", "hyaluronic_acid", "other", "prp")


def test_ultrasound_is_possible_where_the_site_trials_show_it_close_to_fluoroscopy() -> None:
    changed = set()
    for site, injectate, variance, contrast in itertools.product(
        default_knowledge().sites, (*ORDINARY, "cell_based"), ([], ["obesity"], ["effusion"], ["prior_surgery"]), (False, True)
    ):
        rec = answer({"site": site, "injectate": injectate, "anatomy_variance": variance, "contrast_confirmation": contrast})
        if rec is not None and "RATE-US-CLOSE" in rec.ratings["ultrasound"].rules:
            changed.add((site, injectate, tuple(variance), contrast))
            assert rec.ratings["ultrasound"].category.value == "may_be_appropriate"
            assert rec.modality.value == "fluoroscopy" and rec.ratings["fluoroscopy"].category.value == "usually_appropriate"
            assert step_of(rec, "RATE-US-LIMITED").overridden_by == "RATE-US-CLOSE"
            assert {"jee2014", "viderman2023"} & cited_by(rec, "RATE-US-CLOSE")
    expected = {(s, i, v, False) for s in US_CLOSE_SITES for i in US_CLOSE_INJECTATES for v in ((), ("effusion",))}
    assert changed == expected
    for case in (
        {"site": "lumbar_medial_branch", "injectate": "corticosteroid"},
        {"site": "lumbar_facet", "injectate": "local_anesthetic"},
        {"site": "sacroiliac", "injectate": "corticosteroid", "anatomy_variance": ["obesity"]},
        {"site": "sacroiliac", "injectate": "corticosteroid", "contrast_confirmation": True},
        {"site": "epidural_transforaminal", "injectate": "corticosteroid"},
    ):
        assert recommend(case).ratings["ultrasound"].category.value == "usually_not_appropriate", case


def test_the_sacroiliac_ultrasound_rating_quotes_the_trial_outcomes() -> None:
    step = step_of(recommend({"site": "sacroiliac", "injectate": "corticosteroid"}), "RATE-US-CLOSE")
    assert "2 and 12 weeks" in step.conclusion and "87.3%" in step.conclusion
    assert "jee2014" in {c.source for c in step.sources} and "viderman2023" in {c.source for c in step.sources}
    facet = step_of(recommend({"site": "lumbar_facet", "injectate": "prp"}), "RATE-US-CLOSE")
    assert "jee2014" not in {c.source for c in facet.sources} and "no pain difference" in facet.conclusion


# -- a reason the answer overrules (issue 19, point 3) --------------------------------------------


def test_palpation_can_be_accurate_does_not_open_a_chain_the_answer_overrules() -> None:
    for case, by in (
        ({"site": "knee", "injectate": "cell_based"}, "DC-CELL-BASED"),
        ({"site": "elbow", "injectate": "cell_based"}, "DC-CELL-BASED"),
        ({"site": "knee", "injectate": "corticosteroid", "near_neurovascular": True}, "LU-NEUROVASCULAR"),
        ({"site": "knee", "injectate": "corticosteroid", "approach": "anteromedial"}, "LU-APPROACH"),
    ):
        rec = recommend(case)
        assert rec.reasoning[0].rule != "LM-FAVOURABLE", case
        step = step_of(rec, "LM-FAVOURABLE")
        assert step.overridden_by == by and step.conclusion.startswith(f"Overruled by {by}: the target is superficial"), case
        index = {s.rule: i for i, s in enumerate(rec.reasoning)}
        assert index["LM-FAVOURABLE"] > next(i for i, s in enumerate(rec.reasoning) if by in {s.rule, *(r.rule for r in s.reasons)})
        assert "LM-FAVOURABLE" in rec.chain_rules()  # still in the JSON, marked
    contrast = recommend({"site": "knee", "injectate": "corticosteroid", "contrast_confirmation": True})
    assert step_of(contrast, "LM-FAVOURABLE").overridden_by in {"IMG-CONTRAST", "FL-BONY-CONTRAST-JOINT"}
    for case in (
        {"site": "knee", "injectate": "corticosteroid"},  # landmark recommended: the reason stands
        {"site": "knee", "injectate": "corticosteroid", "anatomy_variance": ["effusion"]},  # landmark may be appropriate, for it
        {"site": "a1_pulley", "injectate": "corticosteroid"},  # navigation wanted but unused: not overruled
    ):
        assert all(s.overridden_by is None or s.rule.startswith("RATE-") for s in recommend(case).reasoning), case


def test_no_chain_opens_with_a_reason_the_answer_overrules() -> None:
    """Over the site space: whenever "palpation can be accurate" fired and the answer neither
    recommends landmark nor rates it possible for that reason, the step is marked and not first."""
    kb = default_knowledge()
    seen = 0
    for site, injectate, variance, contrast in itertools.product(
        kb.sites, (*ORDINARY, "cell_based"), ([], ["effusion"], ["obesity"]), (False, True)
    ):
        rec = answer({"site": site, "injectate": injectate, "anatomy_variance": variance, "contrast_confirmation": contrast})
        if rec is None:
            continue
        assert rec.reasoning[0].overridden_by is None, (site, injectate, variance, contrast)
        rules = rec.chain_rules()
        if "LM-FAVOURABLE" in rules and not {"LM-SUITABLE", "RATE-LANDMARK-EFFUSION"} & set(rules):
            seen += 1
            assert step_of(rec, "LM-FAVOURABLE").overridden_by is not None, (site, injectate, variance, contrast)
    assert seen


# -- the specific points of review finding 6 -----------------------------------------------------


def test_the_effusion_step_speaks_of_joints_and_fluid_in_a_bursa_has_its_own_reason() -> None:
    knee = recommend({"site": "knee", "injectate": "corticosteroid", "anatomy_variance": ["effusion"]})
    assert "bursa" not in next(r for s in knee.reasoning for r in (s.reasons or [s]) if r.rule == "LU-EFFUSION").conclusion
    bursa = recommend({"site": "greater_trochanteric_bursa", "injectate": "corticosteroid", "anatomy_variance": ["effusion"]})
    assert "LU-EFFUSION-SOFT-TISSUE" in bursa.chain_rules() and "LU-EFFUSION" not in bursa.chain_rules()
    assert bursa.modality.value == "ultrasound"


def test_a_superficial_spinal_ligament_is_accepted_and_gets_ultrasound() -> None:
    rec = recommend({"region": "spinal", "depth": "superficial", "tissue": "ligament", "palpable": True, "injectate": "corticosteroid"})
    assert rec.modality.value == "ultrasound" and "US-FIT-SPINAL-SOFT-TISSUE" in rec.chain_rules()


def test_the_deep_hip_gets_the_step_that_ultrasound_shows_the_vessels() -> None:
    rec = recommend({"site": "hip", "injectate": "corticosteroid"})
    assert "US-FIT-DEEP-VESSELS" in rec.chain_rules()
    assert any("US3" in c.locator for c in step_of(rec, "US-FIT-DEEP-VESSELS").sources)
    assert rec.modality.value == "ultrasound"  # a reason for ultrasound's fit, not a call for a combination


PERCENT = re.compile(r"(\d+(?:\.\d+)?)(?:\s*-\s*(\d+(?:\.\d+)?))?\s*%")
NUMBER = re.compile(r"\d+(?:\.\d+)?")


def test_every_figure_a_rule_states_is_a_figure_of_the_sites_where_it_fires() -> None:
    """A rule text that states a percentage must state one the site's own evidence gives, at
    every catalogue site where the rule fires."""
    rec = Recommender()
    kb = rec.knowledge
    stating = {r.id: {n for m in PERCENT.finditer(f"{r.conclusion} {r.text or ''}") for n in m.groups() if n} for r in kb.rules}
    stating = {rid: numbers for rid, numbers in stating.items() if numbers}
    assert stating, "no rule states a figure: the test would prove nothing"
    checked = 0
    for site_key, site in kb.sites.items():
        figures = {n for e in site.evidence for n in NUMBER.findall(" ".join(filter(None, (e.ultrasound, e.landmark, e.note))))}
        approaches = [None, "anteromedial", "anterolateral", "medial_midpatellar", "superolateral"] if site_key == "knee" else [None]
        for injectate, variance, contrast, approach in itertools.product(
            (*ORDINARY, "cell_based"), ([], ["obesity"], ["effusion"]), (False, True), approaches
        ):
            case = {"site": site_key, "injectate": injectate, "anatomy_variance": variance, "contrast_confirmation": contrast}
            if approach:
                case["approach"] = approach
            try:
                values = resolve(case, kb).values
            except ValueError:
                continue
            ev = rec.evaluate(values)
            for rule in (*ev.chain, *ev.outputs):
                missing = stating.get(rule.id, set()) - figures
                assert not missing, f"{rule.id} states {sorted(missing)}% at {site_key}, which its evidence does not give ({case})"
                checked += rule.id in stating
    assert checked


# -- what-if within what can change (issue 19, point 7) -------------------------------------------


def test_what_if_never_changes_what_the_site_anatomy_fixes() -> None:
    hip = what_if({"site": "hip", "injectate": "corticosteroid"})
    assert not {"depth", "target_size", "bone_obscures_path", "near_neurovascular"} & set(hip.changeable)
    for alt in hip.alternatives:
        for route in alt.routes:
            assert all(c.field not in {"depth", "target_size", "bone_obscures_path", "near_neurovascular"} for c in route.changes)
    pulley = what_if({"site": "a1_pulley", "injectate": "corticosteroid"})
    assert "target_size" not in pulley.changeable
    assert all(c.field != "target_size" for alt in pulley.alternatives for r in alt.routes for c in r.changes)
    assert all(a.field not in {"depth", "target_size"} for a in inputs_that_matter({"site": "hip", "injectate": "corticosteroid"}))


def test_what_if_offers_the_evidence_based_route() -> None:
    (possible,) = what_if({"site": "a1_pulley", "injectate": "corticosteroid"}).also_possible
    assert possible.modality.value == "landmark" and possible.rules == ("RATE-LANDMARK-CLOSE",)
    assert "12-24 weeks" in possible.reason
    assert what_if({"site": "knee", "injectate": "corticosteroid", "anatomy_variance": ["obesity"]}).also_possible == ()


def test_what_if_offers_ultrasound_where_the_site_trials_show_it_close_to_fluoroscopy() -> None:
    (possible,) = what_if({"site": "sacroiliac", "injectate": "corticosteroid"}).also_possible
    assert possible.modality.value == "ultrasound" and possible.rules == ("RATE-US-CLOSE",)
    assert "2 and 12 weeks" in possible.reason
    assert what_if({"site": "lumbar_medial_branch", "injectate": "corticosteroid"}).also_possible == ()


def test_the_hip_fluoroscopy_rating_quotes_the_hip_comparison_with_fluoroscopy() -> None:
    """The hip's ultrasound-against-fluoroscopy figures are its evidence for that point: the
    fluoroscopy rating and a fluoroscopy bottom line quote them, not the landmark comparison."""
    rec = recommend({"site": "hip", "injectate": "corticosteroid", "contrast_confirmation": True})
    assert rec.modality.value == "fluoroscopy"
    assert {"smith_hip", "hip_us_fluoro"} <= {c.source for c in step_of(rec, "RATE-FL-BONY").sources}
    assert rec.summary.figure is not None and rec.summary.figure.source.source == "smith_hip"
    assert "fluoroscopic contrast" in rec.summary.figure.text


def test_a_typical_chain_reads_in_about_8_steps_and_keeps_every_rule() -> None:
    """Issue 19: a typical chain reads in about 8 steps. A fact that follows from one other fact
    alone (imaging indicated because landmarks are unreliable) ends that fact's step instead of
    standing as a step of its own; its rule stays among the reasons."""
    kb = default_knowledge()
    lengths = sorted(len(recommend({"site": site, "injectate": "corticosteroid"}).reasoning) for site in kb.sites)
    assert lengths[len(lengths) // 2] <= 8, lengths
    hip = recommend({"site": "hip", "injectate": "corticosteroid"})
    first = hip.reasoning[0]
    assert [r.rule for r in first.reasons][-1] == "IMG-LANDMARKS-UNRELIABLE" and len(hip.reasoning) == 8
    assert first.conclusion.endswith("(4 reasons), so imaging guidance is indicated for this case.")
    assert "IMG-LANDMARKS-UNRELIABLE" in hip.chain_rules()
    both = recommend({"site": "hip", "injectate": "cell_based"})  # two reasons for imaging: their own step
    assert {r.rule for s in both.reasoning if s.rule.startswith("IMG-") for r in s.reasons} == {
        "IMG-LANDMARKS-UNRELIABLE",
        "IMG-DELIVERY-CRITICAL",
    }
