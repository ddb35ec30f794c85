"""The reasoning chain as a clinician reads it, step by step (issue 24: mutation testing of
explain.py): each step's conclusion, facts and sources are its own rule's, figures come from the
case's site record, grouped reasons read as one sentence, overruled steps are marked by the rule
that overrules them and placed after it, the policy step says the ratings and the tie-break, the
bottom line quotes the decisive figure, and shared parts never give one case another's answer.
Expected values are read from the rule base, never written here."""

from __future__ import annotations

from typing import Any

import pytest

from guidance_rules.model import Citation, Modality, Recommendation, Step
from guidance_rules.recommendation import explain
from guidance_rules.recommendation.explain import Parts, figure_text
from guidance_rules.recommendation.recommender import Recommender
from guidance_rules.rulebase.conditions import holds
from guidance_rules.rulebase.domain import KnowledgeBase, Rule
from guidance_rules.rulebase.load import cite, default_knowledge, in_scope, load
from guidance_rules.rulebase.schemas import EvidenceSpec

KB = default_knowledge()
REC = Recommender(KB, cache_size=0)
RULES = {rule.id: rule for rule in KB.rules}
KNEE_PATHS = ("anteromedial", "anterolateral", "medial_midpatellar", "superolateral", "lateral_midpatellar")
CASES: list[dict[str, Any]] = [
    *({"site": site, "injectate": "corticosteroid"} for site in KB.sites),
    *({"site": "knee", "injectate": "corticosteroid", "approach": path} for path in KNEE_PATHS),
    {"site": "knee", "injectate": "cell_based"},
    {"site": "knee", "injectate": "corticosteroid", "anatomy_variance": ["effusion"]},
    {"site": "knee", "injectate": "corticosteroid", "near_neurovascular": True},
    {"site": "knee", "injectate": "corticosteroid", "contrast_confirmation": True},
    {"site": "hip", "injectate": "corticosteroid", "contrast_confirmation": True},
    {"site": "hip", "injectate": "cell_based", "anatomy_variance": ["obesity"]},
    {"site": "sacroiliac", "injectate": "corticosteroid", "available_modalities": ["ultrasound"]},
    {"site": "lumbar_medial_branch", "injectate": "corticosteroid", "anatomy_variance": ["obesity"]},
    {"site": "epidural_interlaminar", "injectate": "corticosteroid", "anatomy_variance": ["obesity"]},
    {"site": "lumbar_facet", "injectate": "prp"},
    {"site": "a1_pulley", "injectate": "corticosteroid", "contrast_confirmation": True},
    {"site": "elbow", "injectate": "cell_based"},
    {"region": "peripheral", "depth": "deep", "tissue": "joint", "injectate": "prp"},
    {"region": "peripheral", "depth": "superficial", "tissue": "joint", "palpable": True, "injectate": "corticosteroid"},
    {"region": "spinal", "depth": "deep", "tissue": "epidural", "injectate": "corticosteroid"},
    {"region": "peripheral", "depth": "deep", "tissue": "nerve", "injectate": "prp", "near_neurovascular": True},
]


def answered(case: dict[str, Any], parts: Parts | None = None) -> tuple[Recommendation, dict[str, Any]]:
    """The answer built by `parts` (a fresh one by default: nothing shared with another case), and
    the case's values with every fact the engine derived."""
    resolution = REC.resolve(case)
    evaluation = REC.evaluate(resolution.values)
    return (parts or Parts(KB)).build(resolution, evaluation), evaluation.values


def rows_for(rule_points: tuple[str, ...], values: dict[str, Any]) -> list[EvidenceSpec]:
    """The case's site's own figures for these points, as sites.yaml lists them."""
    site = KB.sites.get(values["site"])
    if site is None:
        return []
    return [
        row
        for row, tests in zip(site.evidence, site.evidence_tests, strict=True)
        if set(row.points) & set(rule_points) and holds(tests, values)
    ]


def phrase(row: EvidenceSpec) -> str:
    """A site figure as the reader sees it: the measure, then each method's figure (else the note)."""
    methods = [f"{name} {figure}" for name, figure in (("ultrasound", row.ultrasound), ("landmark", row.landmark)) if figure]
    if methods:
        return f"{row.measure}: {', '.join(methods)}"
    return f"{row.measure}: {row.note}" if row.note else row.measure


def once(citations: list[Citation]) -> tuple[Citation, ...]:
    out: list[Citation] = []
    for c in citations:
        if all((c.source, c.locator) != (o.source, o.locator) for o in out):
            out.append(c)
    return tuple(out)


def own_reason(rule: Rule, values: dict[str, Any]) -> tuple[str, tuple[Citation, ...]]:
    """What a rule says for this case: its conclusion (with the site's figures for its points) and
    its own sources that fit the case, then the citations of those figures."""
    rows = rows_for(rule.figures, values)
    sources = [c for c in rule.sources if in_scope(KB, c, values)]
    if not rows:
        return rule.conclusion, once(sources)
    title = KB.sites[values["site"]].title
    said = f"{rule.conclusion} Here ({title}): {'; '.join(phrase(r) for r in rows)}."
    return said, once([*sources, *(cite(KB.sources, r.source, r.locator) for r in rows)])


def unmarked(step: Step) -> str:
    """A step's conclusion without its mark (`Overruled by X: ` or `Overridden by X: `)."""
    if step.overridden_by is None:
        return step.conclusion
    rule = RULES[step.rule]
    verb = "Overruled" if rule.derive is not None else "Overridden"
    mark = f"{verb} by {step.overridden_by}: "
    assert step.conclusion.startswith(mark), step
    rest = step.conclusion[len(mark) :]
    return rest[:1].upper() + rest[1:]


def group_text(fact: str, reasons: int, then: str | None) -> str:
    text = KB.facts[fact].rstrip(".") + (f" ({reasons} reasons)" if reasons > 1 else "")
    if then is not None:
        follows = KB.facts[then]
        text += f", so {follows[0].lower()}{follows[1:].rstrip('.')}"
    return text + "."


# -- each step is its own rule's ------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(str(v) for v in c.values()))
def test_each_step_says_its_rules_conclusion_with_its_own_sources_and_facts(case: dict[str, Any]) -> None:
    rec, values = answered(case)
    *steps, policy = rec.reasoning
    for step in steps:
        rule = RULES[step.rule]
        if not step.reasons:
            said, sources = own_reason(rule, values)
            assert unmarked(step) == said and step.sources == sources, step.rule
            assert dict(step.facts) == {f: values[f] for f in rule.reads} and tuple(step.facts) == rule.reads
            continue
        assert step.rule == step.reasons[0].rule
        members = [RULES[r.rule] for r in step.reasons]
        for reason, member in zip(step.reasons, members, strict=True):
            assert (reason.conclusion, reason.sources) == own_reason(member, values), reason.rule
        assert step.sources == once([c for r in step.reasons for c in r.sources])
        assert dict(step.facts) == {f: values[f] for m in members for f in m.reads}
        fact = members[0].derive
        assert fact is not None
        then = members[-1].derive if members[-1].derive != fact else None
        assert unmarked(step) == group_text(fact, len(members) - (then is not None), then), step.rule
    assert policy.rule == KB.policy.id and policy.overridden_by is None and not policy.reasons
    assert dict(policy.facts) == {m.value: rec.ratings[m.value].category.value for m in KB.policy.preference}
    assert list(policy.facts) == [m.value for m in KB.policy.preference]
    opening = f"Recommend {rec.modality.value}: {KB.policy.conclusion[0].lower()}{KB.policy.conclusion[1:]}"
    assert policy.conclusion.startswith(opening)
    own = [c for c in KB.policy.sources if in_scope(KB, c, values)]
    assert policy.sources[: len(once(own))] == once(own)


def test_a_figure_phrase_shows_each_method_given_else_the_note() -> None:
    """The four shapes a site record's row takes (the rule base has the first three)."""
    row = EvidenceSpec(measure="m", ultrasound="u", landmark="l", note="n", source="s", locator="x")
    assert figure_text(row) == "m: ultrasound u, landmark l"
    assert figure_text(row.model_copy(update={"landmark": None})) == "m: ultrasound u"
    assert figure_text(row.model_copy(update={"ultrasound": None})) == "m: landmark l"
    assert figure_text(row.model_copy(update={"ultrasound": None, "landmark": None})) == "m: n"
    assert figure_text(row.model_copy(update={"ultrasound": None, "landmark": None, "note": None})) == "m"


def test_a_single_reason_step_has_no_count_and_ends_with_what_follows() -> None:
    """A fact with one reason and the fact that follows from it alone: one step, no "(1 reasons)"."""
    seen = 0
    for case in CASES:
        rec, _ = answered(case)
        for step in rec.reasoning:
            if len(step.reasons) == 2 and RULES[step.reasons[1].rule].derive != RULES[step.rule].derive:
                seen += 1
                assert "reasons)" not in step.conclusion and ", so " in step.conclusion, step
    assert seen


# -- overridden and overruled steps ---------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(str(v) for v in c.values()))
def test_an_overridden_rating_is_marked_by_the_first_fired_rule_that_overrides_it(case: dict[str, Any]) -> None:
    rec, _ = answered(case)
    chain = list(REC.evaluate(REC.resolve(case).values).chain)
    fired = {r.id for r in chain}
    for step in rec.reasoning[:-1]:
        rule = RULES[step.rule]
        if rule.derive is not None:
            continue
        by = next((r.id for r in chain if step.rule in r.overrides), None)
        assert step.overridden_by == by, (step.rule, by)
        assert by is None or by in fired


def test_an_overruled_reason_comes_right_after_the_step_that_overrules_it() -> None:
    for case in CASES:
        rec, _ = answered(case)
        for i, step in enumerate(rec.reasoning):
            if step.overridden_by is None or RULES[step.rule].derive is None:
                continue
            before = [j for j, s in enumerate(rec.reasoning) if step.overridden_by in {s.rule, *(r.rule for r in s.reasons)}]
            assert before and before[0] < i, (case, step.rule)
            by = rec.reasoning[before[0]]
            between = rec.reasoning[before[0] + 1 : i]
            assert all(s.overridden_by in {by.rule, *(r.rule for r in by.reasons)} for s in between), (case, step.rule)


# The reasons issue 19 names as overruled (test_explain.py), built here by a fresh Parts each: the
# consumers of each derived fact are found when the Parts is made.
OVERRULED: tuple[tuple[dict[str, Any], str, str], ...] = (
    ({"site": "knee", "injectate": "cell_based"}, "LM-FAVOURABLE", "DC-CELL-BASED"),
    ({"site": "elbow", "injectate": "cell_based"}, "LM-FAVOURABLE", "DC-CELL-BASED"),
    ({"site": "knee", "injectate": "corticosteroid", "near_neurovascular": True}, "LM-FAVOURABLE", "LU-NEUROVASCULAR"),
    ({"site": "knee", "injectate": "corticosteroid", "approach": "anteromedial"}, "LM-FAVOURABLE", "LU-APPROACH"),
)
STANDING: tuple[dict[str, Any], ...] = (
    {"site": "knee", "injectate": "corticosteroid"},  # landmark recommended: the reason stands
    {"site": "knee", "injectate": "corticosteroid", "anatomy_variance": ["effusion"]},  # landmark possible, for it
    {"site": "a1_pulley", "injectate": "corticosteroid"},  # navigation wanted but unused: not overruled
)


def test_a_reason_the_answer_overrules_is_marked_by_what_stands_against_it() -> None:
    for case, rule, by in OVERRULED:
        rec, _ = answered(case)
        (step,) = [s for s in rec.reasoning if s.rule == rule]
        assert step.overridden_by == by and step.conclusion.startswith(f"Overruled by {by}: "), case
        assert rec.reasoning[0].overridden_by is None
    for case in STANDING:
        rec, _ = answered(case)
        assert all(s.overridden_by is None for s in rec.reasoning[:-1] if RULES[s.rule].derive is not None), case


def test_steps_keep_the_engine_order_and_a_group_stands_where_its_last_reason_fired() -> None:
    for case in CASES:
        rec, _ = answered(case)
        chain = [r.id for r in REC.evaluate(REC.resolve(case).values).chain]
        shown = [s for s in rec.reasoning[:-1] if s.overridden_by is None or RULES[s.rule].derive is None]
        # a group stands where the last reason for its fact fired (a fact that follows from it ends it)
        last = [
            max(chain.index(r) for r in (s.rule, *(x.rule for x in s.reasons)) if RULES[r].derive == RULES[s.rule].derive) for s in shown
        ]
        assert last == sorted(last), case
        every = [r for s in rec.reasoning[:-1] for r in ((s.rule,) if not s.reasons else tuple(x.rule for x in s.reasons))]
        assert sorted(every) == sorted(chain) and len(every) == len(set(every)), case


# -- the bottom line, the notes, the evidence ------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(str(v) for v in c.values()))
def test_the_bottom_line_and_the_rest_of_the_answer(case: dict[str, Any]) -> None:
    rec, values = answered(case)
    ev = REC.evaluate(REC.resolve(case).values)
    decisive = rec.ratings[rec.modality.value].rules
    summary = rec.summary
    assert summary.modality is rec.modality and summary.rules == decisive
    ties = [
        t
        for t in KB.policy.tie_breaks
        if t.prefer is rec.modality and any(rec.ratings[o.value].category.value == "usually_appropriate" for o in t.over)
    ]
    assert summary.reason == RULES[decisive[0]].conclusion + "".join(f" {t.reason}" for t in ties)
    points = (*(p for r in decisive for p in RULES[r].figures), *KB.policy.summary_points)
    rows = [row for p in points for row in rows_for((p,), values)]
    if rows:
        assert summary.figure is not None
        assert summary.figure.text == f"{KB.sites[values['site']].title}: {phrase(rows[0])}"
        assert summary.figure.source == cite(KB.sources, rows[0].source, rows[0].locator)
    else:
        assert summary.figure is None
    refer = [r for r in ev.outputs if r.bottom_line]
    assert summary.cautions == tuple(r.text for r in refer)
    figure = (
        [f"Key figure: {summary.figure.text} ({summary.figure.source.source}, {summary.figure.source.locator})."] if summary.figure else []
    )
    assert summary.text == " ".join([summary.reason, *figure, *summary.cautions])
    for kind, notes in (("documentation", rec.documentation), ("caution", rec.cautions), ("question", rec.questions)):
        expected = [r for r in ev.outputs if r.kind == kind]
        assert [(n.rule, n.text, n.sources) for n in notes] == [(r.id, r.text, r.sources) for r in expected]
    site = KB.sites.get(values["site"])
    kept = [row for row, tests in zip(site.evidence, site.evidence_tests, strict=True) if holds(tests, values)] if site else []
    assert [(e.site, e.measure, e.ultrasound, e.landmark, e.note, e.source) for e in rec.evidence] == [
        (values["site"], r.measure, r.ultrasound, r.landmark, r.note, cite(KB.sources, r.source, r.locator)) for r in kept
    ]
    assert [(a.field, a.value, a.origin) for a in rec.assumptions] == list(REC.resolve(case).assumptions)
    assert (rec.ruleset.version, rec.ruleset.digest) == (KB.version, KB.digest)
    for m in Modality:
        assert (rec.ratings[m.value].category, rec.ratings[m.value].rules) == (ev.ratings[m].category, ev.ratings[m].rules)


# -- shared parts ----------------------------------------------------------------------------------


def test_shared_parts_never_give_a_case_another_cases_part() -> None:
    """Parts are shared between answers by the values they depend on: every answer built by one
    Parts after all the others equals the answer built afresh, and its JSON is pydantic's."""
    shared = Parts(KB)
    for case in [*CASES, *reversed(CASES)]:
        mine, _ = answered(case, shared)
        fresh, _ = answered(case)
        assert mine == fresh, case
        assert shared.json(mine) == mine.model_dump_json() == fresh.model_dump_json(), case


def test_the_shared_parts_stay_within_their_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    """A long-running service builds answers for ever: each table of shared parts is cleared
    when full, and the answers stay right."""
    monkeypatch.setattr(explain, "PART_LIMIT", 3)
    shared = Parts(KB)
    tables: list[dict[Any, Any]] = [
        shared._steps,
        shared._explanations,
        shared._summaries,
        shared._evidence,
        shared._ratings,
        shared._assumptions,
    ]
    for case in CASES:
        mine, _ = answered(case, shared)
        assert mine == answered(case)[0]
        assert shared.json(mine) == mine.model_dump_json()
        assert all(len(table) <= 3 for table in tables) and len(shared._fragments) <= 3
    assert all(tables)


def test_a_shared_part_is_serialised_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Batch output joins the JSON of shared parts: a step shared by many answers is serialised
    the first time only, and each answer's JSON is still pydantic's, byte for byte."""
    dumped: list[str] = []
    original = Step.model_dump_json

    def counted(self: Step, **options: Any) -> str:
        dumped.append(self.rule)
        return original(self, **options)

    shared = Parts(KB)
    first, _ = answered({"site": "hip", "injectate": "corticosteroid"}, shared)
    second, _ = answered({"site": "hip", "injectate": "prp"}, shared)
    common = [s for s in first.reasoning if any(s is t for t in second.reasoning)]
    assert common  # the two answers share steps: the point of sharing them
    expected = [first.model_dump_json(), second.model_dump_json()]
    monkeypatch.setattr(Step, "model_dump_json", counted)
    assert shared.json(first) == expected[0]
    assert dumped == [s.rule for s in first.reasoning]
    dumped.clear()
    assert shared.json(second) == expected[1] and shared.json(first) == expected[0]
    assert dumped == [s.rule for s in second.reasoning if not any(s is c for c in common)]


def _policy_without_the_hip_study(data: dict[str, Any]) -> None:
    """The ultrasound tie-break still quotes the site's patient ratings, but no longer cites the
    hip-only study: nothing scoped to a site is left among the policy's sources."""
    for tie in data["policy"]["tie_breaks"]:
        tie["sources"] = [c for c in tie["sources"] if c["source"] != "hip_us_fluoro"]


def test_a_tie_breaks_site_figure_is_shared_only_within_its_site(rule_copy: Any) -> None:
    """The policy step is shared between answers with the same ratings; a tie-break quoting a
    site's figure makes it differ by site even when none of its sources is scoped to a site."""
    kb: KnowledgeBase = load(rule_copy("policy.yaml", _policy_without_the_hip_study))
    rec = Recommender(kb, cache_size=0)
    shared = Parts(kb)
    said = {}
    for site in ("hip", "glenohumeral", "hip"):
        resolution = rec.resolve({"site": site, "injectate": "corticosteroid"})
        evaluation = rec.evaluate(resolution.values)
        mine, fresh = shared.build(resolution, evaluation), Parts(kb).build(resolution, evaluation)
        assert mine.reasoning[-1] == fresh.reasoning[-1], site
        said[site] = mine.reasoning[-1].conclusion
    assert f"Here ({kb.sites['hip'].title})" in said["hip"] and "Here (" not in said["glenohumeral"]


def test_a_note_says_only_what_its_rule_file_says(rule_copy: Any) -> None:
    """A caution written with empty text (the schema allows it) shows empty text, in the notes
    and in the bottom line: nothing is made up in its place."""
    case, refer = next((c, r) for c in CASES for r in REC.evaluate(REC.resolve(c).values).outputs if r.bottom_line and r.kind == "caution")

    def empty(data: dict[str, Any]) -> None:
        next(r for r in data["rules"] if r["id"] == refer.id)["then"]["caution"] = ""

    kb = load(rule_copy(refer.file, empty))
    rec = Recommender(kb, cache_size=0)
    resolution = rec.resolve(case)
    answer = Parts(kb).build(resolution, rec.evaluate(resolution.values))
    assert [n.text for n in answer.cautions if n.rule == refer.id] == [""]
    assert refer.text and "" in answer.summary.cautions and refer.text not in answer.summary.text


def _second_tie_break(data: dict[str, Any]) -> None:
    """A second reason to prefer ultrasound over fluoroscopy, written like the first."""
    first = data["policy"]["tie_breaks"][0]
    data["policy"]["tie_breaks"].append({**first, "reason": "A second reason, planted.", "figures": []})


def test_every_tie_break_that_decides_the_case_is_said_in_order(rule_copy: Any) -> None:
    kb: KnowledgeBase = load(rule_copy("policy.yaml", _second_tie_break))
    rec = Recommender(kb, cache_size=0)
    resolution = rec.resolve({"site": "hip", "injectate": "corticosteroid"})
    evaluation = rec.evaluate(resolution.values)
    answer = Parts(kb).build(resolution, evaluation)
    ties = [t for t in kb.policy.tie_breaks if t.prefer is answer.modality]
    assert len(ties) == 2
    decisive = next(r for r in kb.rules if r.id == answer.summary.rules[0])
    assert answer.summary.reason == f"{decisive.conclusion} {ties[0].reason} {ties[1].reason}"
    policy = answer.reasoning[-1].conclusion
    first, second = (policy.index(f"goes first: {t.reason[0].lower()}{t.reason[1:]}"[:-1]) for t in ties)
    assert first < second and policy.count("is also usually appropriate") == 2
