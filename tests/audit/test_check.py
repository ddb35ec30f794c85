"""The audit passes on the shipped rule base and fails, naming the problem, on planted faults.

The shipped rule base is audited in --quick mode (the site and approach spaces, about 166,000
cases). Each planted fault is audited over the spaces it touches, with one worker: the site cases
of the site where it shows (6,144), and for the knee its approach cases too (36,864; the knee is
the only site with a named approach); a fault the static checks find, over the hip's. Every
assertion is kept; CI also runs the full audit over every space on the shipped rule base.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from guidance_rules.audit.check import FAILED, INVALID, UNEVALUATED, AuditReport, assert_complete, evaluate_chunk, run_audit
from guidance_rules.audit.findings import Chunk, SpaceResult
from guidance_rules.errors import AuditError
from guidance_rules.recommendation.pool import RuleBase
from guidance_rules.rulebase.load import default_rules_dir, load
from guidance_rules.rulebase.space import Space, audit_spaces, space_named
from tests.conftest import ROOT, find_rule


def shipped() -> RuleBase:
    return RuleBase(str(default_rules_dir().resolve()), load(default_rules_dir()).digest)


def audit(folder: Path, sites: tuple[str, ...] | None = None) -> AuditReport:
    """The quick audit, or with `sites`, the quick audit narrowed to those sites (one worker)."""
    return run_audit(folder, workers=2 if sites is None else 1, quick=True, sites=sites)


def errors(report: AuditReport, check: str) -> list[str]:
    return [f.message for f in report.findings if f.level == "error" and f.check == check]


def test_shipped_rule_base_passes_quick() -> None:
    report = audit(default_rules_dir())
    assert report.passed, [f.message for f in report.findings if f.level == "error"]
    # exact counts: every index of each space evaluated exactly once (run_audit raises otherwise)
    counts = {s.name: (s.size, s.evaluated, s.valid) for s in report.spaces}
    assert counts == {"sites": (129_024, 129_024, 96_768), "approach": (36_864, 36_864, 36_864)}
    for space in report.spaces:
        assert UNEVALUATED not in space.modality and space.modality.count(INVALID) == space.size - space.valid
    # every valid case is one answer (no engine failure in the shipped rule base), counted once
    answered = sum(report.modality_counts.values())
    assert answered == sum(s.valid for s in report.spaces) and FAILED not in b"".join(s.modality for s in report.spaces)
    assert all(report.modality_counts[m] > 0 for m in ("ultrasound", "fluoroscopy", "both", "landmark"))
    never = {rule for rule, count in report.rule_counts.items() if count == 0}
    # no catalogue site is a mid-depth spinal target or a spinal soft tissue; the full space fires these
    assert never == {"US-FIT-SPINAL-SHALLOW", "US-FIT-SPINAL-SOFT-TISSUE", "FL-BONY-SPINAL-SOFT-TISSUE"}


def test_planted_dead_rule(rule_copy: Any) -> None:
    dead = {
        "id": "PLANTED-DEAD",
        "title": "Never true",
        "version": 1,
        "status": "active",
        "when": {"region": "spinal", "depth": "superficial", "tissue": "joint"},  # only the caudal epidural is superficial
        "then": {"derive": "imaging_indicated"},
        "conclusion": "This can never be concluded.",
        "rationale": "Planted to test the audit.",
        "sources": [{"source": "article", "locator": "LM3"}],
        "examples": {"fires": [{"site": "knee", "injectate": "prp"}]},
    }
    report = audit(rule_copy("imaging.yaml", lambda d: d["rules"].append(dead)), ("hip",))
    assert not report.passed
    assert any("PLANTED-DEAD" in m for m in errors(report, "dead-rule"))


def test_planted_gap(rule_copy: Any) -> None:
    report = audit(rule_copy("landmark.yaml", lambda d: find_rule(d, "LM-FAVOURABLE")["when"].update(target_size="small")), ("knee",))
    assert not report.passed
    gaps = errors(report, "gap")
    assert gaps and "no rule rated" in gaps[0]


def test_planted_conflict(rule_copy: Any) -> None:
    report = audit(rule_copy("ultrasound.yaml", lambda d: find_rule(d, "RATE-US-LIMITED").pop("overrides")), ("lumbar_facet",))
    assert not report.passed
    conflicts = errors(report, "conflict")
    assert conflicts and all("RATE-US-LIMITED" in m and "none overrides the other" in m for m in conflicts)


def test_planted_unsourced_rule(rule_copy: Any) -> None:
    report = audit(rule_copy("imaging.yaml", lambda d: find_rule(d, "DC-CELL-BASED").update(sources=[])), ("hip",))
    assert not report.passed
    (message,) = errors(report, "load")
    assert "DC-CELL-BASED" in message and "sources" in message


def test_planted_uncited_proposition(rule_copy: Any) -> None:
    def drop_tr2(data: dict[str, Any]) -> None:
        rule = find_rule(data, "CAUTION-OPERATOR-TRAINING")
        rule["sources"] = [s for s in rule["sources"] if s["locator"] != "TR2"]

    report = audit(rule_copy("cautions.yaml", drop_tr2), ("hip",))
    assert not report.passed
    assert errors(report, "uncited-proposition") == ["proposition TR2 is cited by no rule, site record or policy"]


def test_planted_monotonicity_violation(rule_copy: Any) -> None:
    """Invert the neurovascular rule: setting near_neurovascular now removes the reason for imaging."""
    report = audit(
        rule_copy("landmark.yaml", lambda d: find_rule(d, "LU-NEUROVASCULAR")["when"].update(near_neurovascular=False)), ("knee",)
    )
    assert not report.passed
    assert any("near_neurovascular from False to True" in m for m in errors(report, "monotone"))


def test_audit_cli_json_and_exit_code(tmp_path: Path) -> None:
    """The command end to end (exit 0, JSON, HTML). scripts/test.sh sets GR_TEST_FULL_AUDIT_HTML:
    this is then its full audit over every space (its HTML report kept there), not a second run of
    the quick one test_shipped_rule_base_passes_quick has already proved in-process."""
    full = os.environ.get("GR_TEST_FULL_AUDIT_HTML")
    html = Path(full).resolve() if full else tmp_path / "report.html"
    result = subprocess.run(
        [sys.executable, "-m", "guidance_rules", "audit", *([] if full else ["--quick"]), "--json", "--html", str(html)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["passed"] is True and summary["cases"]["sites"] == {"enumerated": 129_024, "evaluated": 129_024, "valid": 96_768}
    spaces = audit_spaces(load(default_rules_dir()), quick=not full)
    assert {name: c["evaluated"] for name, c in summary["cases"].items()} == {s.name: s.size for s in spaces}  # every case of every space
    assert html.read_text().startswith("<!doctype html>")


def test_audit_cli_fails_with_exit_1(rule_copy: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A failing audit exits 1 and says why: the command in-process, its audit narrowed to the
    site where the planted conflict shows (the command's own run is the test above)."""
    from guidance_rules.cli import audit as audit_command
    from guidance_rules.cli import main

    def narrowed(rules_dir: Path | str, workers: int = 0, quick: bool = False, progress: Any = None) -> AuditReport:
        assert quick  # the flag reached the audit
        return run_audit(rules_dir, 1, quick, progress, sites=("lumbar_facet",))

    monkeypatch.setattr(audit_command, "run_audit", narrowed)
    folder = rule_copy("ultrasound.yaml", lambda d: find_rule(d, "RATE-US-LIMITED").pop("overrides"))
    assert main(["--rules", str(folder), "audit", "--quick"]) == 1
    out = capsys.readouterr().out
    assert "conflict" in out and "FAILED" in out


def test_a_repeated_step_is_an_audit_problem(monkeypatch: pytest.MonkeyPatch) -> None:
    """Planted: an engine whose chains repeat a rule (as durable's per-value firing did)."""
    import dataclasses

    from guidance_rules.audit import check
    from guidance_rules.recommendation.recommender import Recommender

    original = Recommender.evaluate_many

    def repeating(self: Recommender, batch: list[Any]) -> list[Any]:
        return [dataclasses.replace(ev, chain=[*ev.chain, ev.chain[0]]) for ev in original(self, batch)]

    monkeypatch.setattr(Recommender, "evaluate_many", repeating)
    monkeypatch.setattr(check, "_checkers", {})  # no verdict kept from an unpatched engine
    found = check.evaluate_chunk(shipped(), space_named("sites", load(default_rules_dir())), 0, 300)
    assert any(check_name == "repeated-step" for check_name, _ in found.problems)


def test_planted_rule_change_breaks_a_clinical_invariant(rule_copy: Any) -> None:
    """Undo review finding 1 (contrast no longer blocks landmark): the audit names the invariant
    and shows the smallest counterexample, a plain knee with a contrast request."""
    rule_copy("landmark.yaml", lambda d: find_rule(d, "LM-SUITABLE")["when"].pop("contrast_confirmation"))
    report = audit(rule_copy("imaging.yaml", lambda d: find_rule(d, "IMG-CONTRAST").update(status="retired")), ("knee",))
    assert not report.passed
    found = [f for f in report.findings if f.check == "invariant" and f.message.startswith("INV-CONTRAST-NOT-LANDMARK fails on")]
    assert found, [f.message for f in report.findings if f.level == "error"]
    assert found[0].case == {"site": "knee", "injectate": "corticosteroid", "contrast_confirmation": True}
    # contrast now changes nothing: landmark stays landmark, which breaks no escalation (this line once
    # asserted the false 'turns landmark into landmark' report the monotone check made)
    assert not any("turns landmark into landmark" in m for m in errors(report, "monotone"))


def test_planted_invariant_that_does_not_hold(rule_copy: Any) -> None:
    """An invariant added to invariants.yaml is proved by the audit like the shipped ones."""
    planted = {
        "id": "INV-PLANTED-KNEE-LANDMARK",
        "statement": "Every knee injection is a landmark injection (false on purpose).",
        "when": {"site": "knee"},
        "must": {"hold": {"modality": "landmark"}},
        "sources": [{"source": "article", "locator": "LM6"}],
        "examples": {"covers": [{"site": "knee", "injectate": "corticosteroid"}]},
    }
    report = audit(rule_copy("invariants.yaml", lambda d: d["invariants"].append(planted)), ("knee",))
    assert not report.passed
    (finding,) = [f for f in report.findings if f.check == "invariant"]
    assert finding.message.startswith("INV-PLANTED-KNEE-LANDMARK fails on") and "modality is ultrasound" in finding.message
    assert finding.case == {"site": "knee", "injectate": "corticosteroid", "palpable": False}


def test_invariant_file_errors_name_the_invariant_and_key(rule_copy: Any) -> None:
    from guidance_rules.audit.invariants import load_invariants
    from guidance_rules.errors import RuleFileError
    from guidance_rules.rulebase.load import load

    def bad_note(data: dict[str, Any]) -> None:
        data["invariants"][0]["must"]["notes"] = ["RATE-US-FIT"]

    kb = load(rule_copy("invariants.yaml", bad_note))
    with pytest.raises(RuleFileError, match="INV-LANDMARK-JUSTIFIED") as caught:
        load_invariants(kb)
    assert "must.notes" in str(caught.value) and "not an active documentation, caution or question rule" in str(caught.value)


def test_a_cache_that_differs_from_the_rule_files_fails_the_audit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Planted: a cached rule base whose parsed data differs from what the files say."""
    from guidance_rules.audit import check
    from guidance_rules.rulebase.load import load

    shipped = load(default_rules_dir())
    assert check.cache_findings(str(default_rules_dir()), shipped) == []
    altered = load(default_rules_dir(), cache=False)
    object.__setattr__(altered, "rules", altered.rules[:-1])  # as a stale or tampered cache would give
    found = check.cache_findings(str(default_rules_dir()), altered)
    assert [f.check for f in found] == ["knowledge-cache"]


def test_monotone_check_reports_imaging_turned_into_landmark_only() -> None:
    """'changing X from a to b turns landmark into landmark' was reported as a violation (review finding)."""
    from guidance_rules.audit.check import MODALITIES, monotone_findings
    from guidance_rules.audit.invariants import Escalation
    from guidance_rules.model import Modality
    from guidance_rules.rulebase.space import Space

    space = Space("tiny", ("depth",), (("superficial", "intermediate"),))
    step = Escalation("INV-TEST", "deeper never removes imaging", "depth", (("superficial", "intermediate"),), (), (), ())
    code = {m: bytes([MODALITIES.index(m)]) for m in Modality}
    assert monotone_findings(space, code[Modality.LANDMARK] + code[Modality.LANDMARK], (step,)) == []
    [finding] = monotone_findings(space, code[Modality.ULTRASOUND] + code[Modality.LANDMARK], (step,))
    assert finding.message == "INV-TEST: changing depth from superficial to intermediate turns ultrasound into landmark"
    assert monotone_findings(space, code[Modality.LANDMARK] + code[Modality.ULTRASOUND], (step,)) == []


def test_a_chunk_evaluates_every_one_of_its_cases() -> None:
    """Planted (issue 24): a loop that leaves the last case of each chunk unevaluated passed the
    audit, the never-evaluated case reading as ultrasound. Each index of a chunk gets a code."""
    out = evaluate_chunk(shipped(), space_named("sites", load(default_rules_dir())), 1000, 1300)
    assert (out.start, out.stop, len(out.modality)) == (1000, 1300, 300)
    assert UNEVALUATED not in out.modality


TINY = Space("tiny", ("n",), (tuple(range(10)),))


def test_complete_chunks_pass() -> None:
    assert_complete(TINY, [(4, 10), (0, 4)], bytes(10))  # raises on anything less


@pytest.mark.parametrize(
    ("spans", "codes", "said"),
    [
        ([(0, 4), (5, 10)], bytes(10), "cases 4..4 were never evaluated"),  # a gap between chunks
        ([(0, 5), (4, 10)], bytes(10), "cases 4..4 were evaluated twice"),  # an overlap
        ([(0, 4), (4, 9)], bytes(10), "cases 9..9 were never evaluated"),  # the last chunk falls short
        ([(1, 10)], bytes(10), "cases 0..0 were never evaluated"),  # the first is missing
        ([(0, 4), (4, 10)], bytes(9) + bytes([UNEVALUATED]), "1 of 10 cases were never evaluated, the first at index 9"),
    ],
)
def test_an_incomplete_enumeration_raises(spans: list[tuple[int, int]], codes: bytes, said: str) -> None:
    with pytest.raises(AuditError, match=said):
        assert_complete(TINY, spans, codes)


def _rerate(rule_id: str, modality: str, category: str) -> Any:
    def edit(data: dict[str, Any]) -> None:
        find_rule(data, rule_id)["then"]["rate"][modality] = category

    return edit


# (file, rule, modality, new category, the invariant that must catch it): each changes a rating
# but not the chosen modality, which the examples and the modality-only checks could not see
RATING_PLANTS = [
    ("combination.yaml", "RATE-BOTH-UNNEEDED", "both", "may_be_appropriate", "INV-BOTH-UNNEEDED-RATED"),
    ("ultrasound.yaml", "RATE-US-LIMITED", "ultrasound", "may_be_appropriate", "INV-US-LIMITED-RATED"),
    ("fluoroscopy.yaml", "RATE-FL-SOFT-TISSUE", "fluoroscopy", "may_be_appropriate", "INV-FL-SOFT-TISSUE-RATED"),
    ("landmark.yaml", "RATE-LANDMARK-SUITABLE", "fluoroscopy", "may_be_appropriate", "INV-LANDMARK-SUITABLE-RATED"),
]


@pytest.mark.parametrize(("file", "rule", "modality", "category", "invariant"), RATING_PLANTS, ids=[p[1] for p in RATING_PLANTS])
def test_a_changed_rating_is_caught_by_its_invariant_examples(
    rule_copy: Any, file: str, rule: str, modality: str, category: str, invariant: str
) -> None:
    """Issue 24: ratings were pinned only through the chosen modality. Each of the four ratings is
    now pinned by an invariant in rules/invariants.yaml, whose own examples catch the change."""
    from guidance_rules.audit.invariants import invariant_example_findings, load_invariants
    from guidance_rules.recommendation.recommender import Recommender
    from guidance_rules.rulebase.load import load

    kb = load(rule_copy(file, _rerate(rule, modality, category)))
    found = invariant_example_findings(Recommender(kb, cache_size=0), load_invariants(kb))
    assert any(f.check == "invariant" and f.message.startswith(f"{invariant} fails on its own example") for f in found), found


def test_both_rated_may_be_appropriate_when_nothing_calls_for_confirmation_fails_the_audit(rule_copy: Any) -> None:
    """The issue's plant, through the audit: over the knee's site and approach cases, with the smallest counterexample."""
    report = audit(rule_copy("combination.yaml", _rerate("RATE-BOTH-UNNEEDED", "both", "may_be_appropriate")), ("knee",))
    assert not report.passed
    found = [f.message for f in report.findings if f.check == "invariant" and f.message.startswith("INV-BOTH-UNNEEDED-RATED fails on")]
    assert found and "required both rated at most usually_not_appropriate, but it is rated may_be_appropriate" in found[0]


def _chunk(start: int, codes: bytes) -> Chunk:
    chunk = Chunk.empty("tiny", start, start + len(codes), ["R1"])
    chunk.modality[:] = codes
    chunk.marks["R1"][:] = bytes(1 if c == 0 else 0 for c in codes)
    return chunk


def test_chunks_merge_alike_in_any_order() -> None:
    """Workers finish in any order: the merged result (codes, firing bits, counts) is the same."""
    codes = bytes([0, 1, INVALID, 0, 2, INVALID, 0, 3, 0, 1])
    results = []
    for order in ([0, 4, 7], [7, 0, 4], [4, 7, 0]):
        result = SpaceResult("tiny", 10)
        for start in order:
            stop = {0: 4, 4: 7, 7: 10}[start]
            result.merge(_chunk(start, codes[start:stop]))
        result.complete(INVALID)
        results.append((bytes(result.modality), result.marks, result.evaluated, result.valid))
    assert results[0] == results[1] == results[2]
    assert results[0][2:] == (10, 8)
    assert results[0][1]["R1"] == int.from_bytes(bytes(1 if c == 0 else 0 for c in codes), "little")


def test_a_chunk_short_of_its_span_or_missing_is_never_counted() -> None:
    result = SpaceResult("tiny", 10)
    short = _chunk(0, bytes(4))
    short.stop = 5  # says [0, 5) but carries 4 codes
    with pytest.raises(AuditError, match="returned 4 codes"):
        result.merge(short)
    result.merge(_chunk(0, bytes(4)))
    result.merge(_chunk(7, bytes(3)))
    with pytest.raises(AuditError, match=r"cases 4\.\.6 were never evaluated"):
        result.complete(INVALID)
    assert (result.evaluated, result.valid) == (0, 0)


def test_problems_keep_the_case_of_lowest_index() -> None:
    a, b = Chunk.empty("tiny", 0, 5, []), Chunk.empty("tiny", 5, 10, [])
    a.problem("gap", "no rule rated", 3, {"n": 3})
    b.problem("gap", "no rule rated", 6, {"n": 6})
    b.problem("gap", "no rule rated", 8, {"n": 8})
    merged = b.problems[("gap", "no rule rated")]
    merged.add(a.problems[("gap", "no rule rated")])
    assert (merged.count, merged.first, merged.case) == (3, 3, {"n": 3})


def test_space_cases_count_like_case() -> None:
    space = Space("mixed", ("a", "b", "c"), ((1, 2, 3), ("x", "y"), (True, False, None, 0)))
    assert list(space.cases(0, space.size)) == [space.case(i) for i in range(space.size)]
    assert list(space.cases(5, 17)) == [space.case(i) for i in range(5, 17)]
    assert list(space.cases(20, 99)) == [space.case(i) for i in range(20, space.size)]
