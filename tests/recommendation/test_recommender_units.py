"""The Recommender's promises, one at a time and in process: every path gives the answer one
`recommend` gives, answers are kept (and evaluated once) under the case's value, each case of a
batch gets its own answer or error in its place, a rule base that cannot answer says so with the
case, and the rule base travels between processes by name. Written against the mutation run of
issue 24: the engine's firing (`on_fire`) shows what was evaluated again and what was kept."""

from __future__ import annotations

import os
import pickle
import uuid
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from guidance_rules import Case, EngineError, Recommendation, Recommender, recommend
from guidance_rules.engine.durable import MAX_SESSION_FACTS
from guidance_rules.errors import RuleFileError
from guidance_rules.recommendation.recommender import default_recommender, process_recommender
from guidance_rules.rulebase.load import default_knowledge, load

KNEE = Case(site="knee", injectate="corticosteroid")
HIP = {"site": "hip", "injectate": "prp"}
PRP_KNEE = {"site": "knee", "injectate": "prp"}


def counting(cache_size: int = 8192) -> tuple[Recommender, list[str]]:
    """A Recommender over the shipped rules and the list of every rule its engine fires."""
    fired: list[str] = []
    return Recommender(cache_size=cache_size, on_fire=fired.append), fired


def planted_gap(rule_copy: Any) -> Path:
    """A rule base that cannot rate a plain knee (LM-FAVOURABLE narrowed to small targets)."""

    def narrow(data: dict[str, Any]) -> None:
        [rule] = [r for r in data["rules"] if r["id"] == "LM-FAVOURABLE"]
        rule["when"]["target_size"] = "small"

    return rule_copy("landmark.yaml", narrow)  # type: ignore[no-any-return]


# -- answers are kept under the case's value and evaluated once ---------------------------------


def test_an_answer_is_kept_and_given_again_without_evaluating() -> None:
    rec, fired = counting()
    answer = rec.recommend(KNEE)
    count = len(fired)
    assert count > 0
    assert rec.recommend(KNEE) is answer
    assert rec.recommend({"site": "knee", "injectate": "corticosteroid"}) is answer
    assert rec.recommend_many([KNEE, {"site": "knee", "injectate": "corticosteroid"}]) == [answer, answer]
    text = rec.recommend_json(KNEE)  # built from the kept answer
    assert text == answer.model_dump_json()
    assert rec.recommend_json(KNEE) is text
    assert rec.recommend_many_json([KNEE]) == [text]
    assert len(fired) == count


def test_json_first_keeps_the_answer_too() -> None:
    rec, fired = counting()
    text = rec.recommend_json(HIP)
    count = len(fired)
    assert rec.recommend(HIP).model_dump_json() == text
    assert rec.recommend_many([HIP])[0].model_dump_json() == text  # type: ignore[union-attr]
    assert len(fired) == count


def test_a_batch_keeps_its_answers_for_later_calls() -> None:
    rec, fired = counting()
    [answer] = rec.recommend_many([PRP_KNEE])
    count = len(fired)
    assert rec.recommend(PRP_KNEE) is answer
    assert rec.recommend_many_json([PRP_KNEE]) == [answer.model_dump_json()]  # type: ignore[union-attr]
    [text] = rec.recommend_many_json([HIP])
    count = len(fired)
    assert rec.recommend_json(HIP) is text
    assert rec.recommend(HIP).model_dump_json() == text
    assert len(fired) == count


def test_a_kept_answer_is_used_for_a_batchs_json() -> None:
    rec, fired = counting()
    answer = rec.recommend(HIP)
    count = len(fired)
    assert rec.recommend_many_json([HIP, HIP]) == [answer.model_dump_json()] * 2
    assert len(fired) == count


def test_without_an_answer_cache_each_call_evaluates_and_later_strata_are_remembered() -> None:
    rec, fired = counting(cache_size=0)
    first = rec.recommend(PRP_KNEE)
    everything = list(fired)
    fired.clear()
    again = rec.recommend(PRP_KNEE)
    assert again == first and again is not first
    assert 0 < len(fired) < len(everything)  # the first stratum fires again; the later ones are remembered
    assert set(fired) < set(everything)
    fired.clear()
    rec.cache_clear()
    assert rec.recommend(PRP_KNEE) == first
    assert sorted(fired) == sorted(everything)


def test_cache_clear_forgets_the_kept_answers_and_texts() -> None:
    rec, fired = counting()
    answer, text = rec.recommend(HIP), rec.recommend_json(HIP)
    rec.cache_clear()
    fired.clear()
    assert rec.recommend_json(HIP) == text and fired
    again = rec.recommend(HIP)
    assert again == answer and again is not answer


def test_an_altered_case_is_answered_for_its_values_every_time() -> None:
    rec = Recommender()
    rec.recommend(KNEE)
    changed = KNEE.model_copy(update={"injectate": "cell_based"})
    assert rec.recommend(changed) == recommend({"site": "knee", "injectate": "cell_based"})
    assert rec.recommend_json(changed) == rec.recommend(changed).model_dump_json()
    for unhashable in (Case.model_construct(site="knee", injectate="prp", anatomy_variance=[["obesity"]]),):
        with pytest.raises(ValidationError):
            rec.recommend(unhashable)
        with pytest.raises(ValidationError):
            rec.recommend_json(unhashable)
        [error] = rec.recommend_many([unhashable])
        assert isinstance(error, ValidationError)


def test_validate_drops_absent_fields_and_checks_the_rest() -> None:
    rec = Recommender()
    assert rec.validate(Case(site="knee", injectate="prp", palpable=None)) == Case(site="knee", injectate="prp")
    assert rec.validate({"site": "knee", "injectate": "prp"}) == Case(site="knee", injectate="prp")
    with pytest.raises(ValidationError):
        rec.validate(Case.model_construct(site="knee", injectate="bogus"))


# -- a batch: each case its own answer or error, in its place ------------------------------------


def test_each_case_of_a_batch_gets_the_one_by_one_answer_or_its_error_in_place() -> None:
    cases: list[Any] = [
        KNEE,
        {"site": "knee"},
        HIP,
        KNEE,
        {"site": "nowhere", "injectate": "prp"},
        Case.model_construct(site="knee", injectate="bogus"),
        {"site": "a1_pulley", "injectate": "corticosteroid"},
    ]
    rec = Recommender()
    got = rec.recommend_many(cases)
    texts = Recommender().recommend_many_json(cases)
    alone = Recommender(cache_size=0)
    assert len(got) == len(texts) == len(cases)
    for case, answer, text in zip(cases, got, texts, strict=True):
        try:
            expected = alone.recommend(case)
        except ValidationError as error:
            assert isinstance(answer, ValidationError) and isinstance(text, ValidationError)
            assert answer.errors() == text.errors() == error.errors()
            continue
        assert isinstance(answer, Recommendation) and answer == expected
        assert text == expected.model_dump_json()
    kinds = [
        "Recommendation",
        "ValidationError",
        "Recommendation",
        "Recommendation",
        "ValidationError",
        "ValidationError",
        "Recommendation",
    ]
    assert [type(a).__name__ for a in got] == kinds


def test_batches_longer_than_a_session_are_split_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    rec = Recommender(cache_size=0)
    cases = [PRP_KNEE, HIP, dict(KNEE.model_dump(exclude_none=True)), {"site": "a1_pulley", "injectate": "prp"}, HIP]
    values = [dict(rec.resolve(c).values) for c in cases]
    whole = rec.evaluate_many(values)
    monkeypatch.setattr(Recommender, "session_cases", property(lambda self: 2))
    split = Recommender(cache_size=0).evaluate_many(values)
    one = [Recommender(cache_size=0).evaluate(v) for v in values]
    for a, b, c in zip(whole, split, one, strict=True):
        assert not isinstance(a, EngineError) and not isinstance(b, EngineError)
        assert (a.modality, a.fired) == (b.modality, b.fired) == (c.modality, c.fired)
    assert len(split) == len(cases)
    assert Recommender(cache_size=0).evaluate_many([]) == []


def test_a_session_takes_as_many_cases_as_its_facts_allow() -> None:
    rec = Recommender()
    parts = rec.compiled.parts
    assert rec.session_cases * parts <= MAX_SESSION_FACTS < (rec.session_cases + 1) * parts


# -- a case the rule base cannot answer ------------------------------------------------------------


def test_a_case_the_rule_base_cannot_answer_is_an_engine_error_naming_the_case(rule_copy: Any) -> None:
    gap = Recommender(load(planted_gap(rule_copy)))
    with pytest.raises(EngineError) as raised:
        gap.recommend(PRP_KNEE)
    message = str(raised.value)
    assert message.startswith("no rule rated")
    described = message[message.index(" (case {") :]
    assert described.endswith("})") and "site=knee, " in described and ", injectate=prp" in described
    assert "=()" not in described and "=," not in described and "=}" not in described  # values not given and empty are left out
    siteless = {
        "region": "peripheral",
        "depth": "superficial",
        "tissue": "joint",
        "injectate": "prp",
        "target_size": "large",
        "palpable": True,
    }
    with pytest.raises(EngineError) as raised:
        gap.recommend(siteless)
    said = "(case {landmark_evidence=unknown, us_fluoroscopy_evidence=unknown, region=peripheral, depth=superficial, tissue=joint"
    assert f"{said}, target_size=large, palpable=True" in str(raised.value)
    assert "site=" not in str(raised.value) and "anatomy_variance" not in str(raised.value)
    with pytest.raises(EngineError, match=r"\(case \{"):  # the failure is not remembered as a choice
        gap.recommend_json(PRP_KNEE)
    got = gap.recommend_many([PRP_KNEE, HIP, {"site": "knee", "injectate": "nothing"}, PRP_KNEE])
    assert isinstance(got[0], EngineError) and str(got[0]) == message
    alone = Recommender(gap.knowledge, cache_size=0)
    assert got[1] == alone.recommend(HIP)
    assert isinstance(got[2], ValidationError) and isinstance(got[3], EngineError)
    texts = Recommender(gap.knowledge).recommend_many_json([PRP_KNEE, HIP])
    assert isinstance(texts[0], EngineError) and texts[1] == alone.recommend_json(HIP)
    values = dict(gap.resolve(PRP_KNEE).values)
    [result] = gap.evaluate_many([values])
    assert isinstance(result, EngineError)
    with pytest.raises(EngineError):
        gap.evaluate(values)


def test_a_case_invalid_against_the_rule_base_is_a_validation_error_at_its_fields() -> None:
    rec = Recommender()
    with pytest.raises(ValidationError) as raised:
        rec.recommend({"region": "spinal", "tissue": "tendon_sheath", "depth": "deep", "injectate": "prp"})
    assert str(raised.value).startswith("2 validation errors for Case\nregion\n")
    errors = raised.value.errors(include_url=False)
    assert [(e["loc"], e["type"], e["input"], type(e["input"])) for e in errors] == [
        (("region",), "contradiction", "spinal", str),
        (("tissue",), "contradiction", "tendon_sheath", str),
    ]
    assert errors[0]["msg"] == errors[1]["msg"] and "region" in errors[0]["msg"]
    with pytest.raises(ValidationError) as raised:
        rec.resolve({"site": "nowhere", "injectate": "prp"})
    [error] = raised.value.errors(include_url=False)
    assert (error["loc"], error["type"], error["input"]) == (("site",), "unknown_site", "nowhere")
    assert error["msg"].startswith("unknown site 'nowhere'")


# -- between processes: the rule base by name -------------------------------------------------------


def test_a_recommender_pickles_as_its_rule_base(rule_copy: Any) -> None:
    shipped = Recommender()
    assert shipped.__reduce__() == (process_recommender, (None, shipped.knowledge.digest))
    assert pickle.loads(pickle.dumps(shipped)) is process_recommender()
    folder = planted_gap(rule_copy)
    other = Recommender(load(folder))
    assert other.__reduce__() == (process_recommender, (str(other.knowledge.directory), other.knowledge.digest))
    copy = pickle.loads(pickle.dumps(other))
    assert copy.knowledge.digest == other.knowledge.digest and copy is process_recommender(folder)
    with pytest.raises(TypeError, match=r"^a Recommender with an on_fire hook cannot be pickled: "):
        pickle.dumps(Recommender(on_fire=lambda rule: None))


def test_process_recommender_is_built_once_per_rule_base_and_refuses_other_files(
    rule_copy: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    digest = default_knowledge().digest
    first = process_recommender()
    assert process_recommender() is first and process_recommender(None, digest) is first

    def unique(data: dict[str, Any]) -> None:  # a digest no earlier test (or run in this process) has built
        data["rules"][0]["conclusion"] += f" [{uuid.uuid4()}]"

    folder = rule_copy("landmark.yaml", unique)
    other = process_recommender(folder)
    assert isinstance(other, Recommender) and other.knowledge.digest == load(folder).digest != digest
    assert process_recommender(folder) is other and process_recommender(folder, other.knowledge.digest) is other
    assert process_recommender(folder, digest) is first  # this process already has the rules the work was planned with
    planned = "0123456789abcdef" * 4
    with pytest.raises(RuleFileError) as raised:
        process_recommender(folder, planned)
    assert str(raised.value) == (
        f"{load(folder).directory}: the rule base here has digest {other.knowledge.digest[:12]}, not 0123456789ab as where the "
        "work was planned; install the same rule files on every worker"
    )
    monkeypatch.setenv("GUIDANCE_RULES_CACHE_DIR", os.environ.get("GUIDANCE_RULES_CACHE_DIR", ""))
    assert process_recommender(cache_dir=tmp_path) is first
    assert os.environ["GUIDANCE_RULES_CACHE_DIR"] == str(tmp_path)


def test_the_shared_recommender_is_one_and_answers_recommend() -> None:
    shared = default_recommender()
    assert default_recommender() is shared
    assert recommend(HIP) is shared.recommend(HIP)


def test_a_closed_recommender_keeps_its_answers_and_refuses_new_ones() -> None:
    with Recommender() as rec:
        answer = rec.recommend(HIP)
    assert rec.recommend(HIP) is answer
    with pytest.raises(EngineError, match="closed"):
        rec.recommend(PRP_KNEE)


# -- strata, parts and sessions --------------------------------------------------------------------


def test_a_repeated_case_fires_again_only_its_first_stratum() -> None:
    """Strata after the first read few keys and are remembered by their input; the first is not."""
    rec, fired = counting(cache_size=0)
    rec.recommend(PRP_KNEE)
    fired.clear()
    rec.recommend(PRP_KNEE)
    first = {rule.id for rule in rec.compiled.strata[0].rules}
    assert fired and set(fired) <= first


SAMPLE = [
    {"site": site, "injectate": injectate, "anatomy_variance": variance}
    for site in ("knee", "hip", "lumbar_facet", "a1_pulley", "epidural_transforaminal", "sacroiliac", "carpal_tunnel")
    for injectate in ("prp", "corticosteroid", "cell_based")
    for variance in ([], ["obesity"])
]


def test_strata_split_into_several_parts_answer_as_one_part(monkeypatch: pytest.MonkeyPatch) -> None:
    """A rule base too large for one engine node per stratum is split into parts (engine.compile);
    each part reads its own keys, and the answers are those of the unsplit rule base."""
    from guidance_rules.rulebase import limits

    whole = Recommender(cache_size=0)
    monkeypatch.setattr(limits, "MAX_RULES_PER_NODE", 1)
    split = Recommender(cache_size=0)
    assert sum(len(s.parts) > 1 for s in split.compiled.strata) >= 3
    for case in SAMPLE:
        assert split.recommend(case).model_dump_json() == whole.recommend(case).model_dump_json(), case
    values = [dict(whole.resolve(case).values) for case in SAMPLE]
    for a, b in zip(split.evaluate_many(values), whole.evaluate_many(values), strict=True):
        assert not isinstance(a, EngineError) and not isinstance(b, EngineError)
        assert (a.modality, a.fired) == (b.modality, b.fired)


def test_full_batches_after_others_never_overflow_a_session() -> None:
    rec = Recommender(cache_size=0)
    assert not isinstance(rec.evaluate_many([dict(rec.resolve(HIP).values)])[0], EngineError)  # a session with a few facts
    batch = [dict(rec.resolve(PRP_KNEE).values)] * rec.session_cases  # new to every stratum: as many facts as a session holds
    for _ in range(3):
        results = rec.evaluate_many(batch)
        assert not any(isinstance(r, EngineError) for r in results)


def test_a_fact_no_rule_derives_is_false(rule_copy: Any) -> None:
    def drop(data: dict[str, Any]) -> None:
        data["rules"] = [r for r in data["rules"] if r["id"] != "DC-CELL-BASED"]

    rec = Recommender(load(rule_copy("imaging.yaml", drop)), cache_size=0)
    assert rec.compiled.underived == ("delivery_critical",)
    shipped = Recommender(cache_size=0)
    case = {"site": "knee", "injectate": "corticosteroid"}
    evaluation = rec.evaluate(dict(rec.resolve(case).values))
    assert evaluation.values["delivery_critical"] is False
    expected = shipped.evaluate(dict(shipped.resolve(case).values))
    assert (evaluation.modality, evaluation.fired) == (expected.modality, expected.fired)


def test_a_second_entry_while_the_shared_recommender_is_built_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """What a signal handler calling recommend() during the process's first recommend() meets
    (tests/recommendation/test_recommender.py sends the signal in a process of its own)."""
    from guidance_rules.errors import EngineBusyError
    from guidance_rules.recommendation import recommender as module

    monkeypatch.setattr(module, "_default", None)
    monkeypatch.setattr(module, "Recommender", lambda: module.default_recommender())
    said = (
        "the shared recommender is still being built on this thread (was recommend() called from a signal handler during the "
        "process's first recommend()?); call it again once that call has returned"
    )
    with pytest.raises(EngineBusyError) as raised:
        module.default_recommender()
    assert str(raised.value) == said


def test_the_shared_recommender_is_built_on_first_use(monkeypatch: pytest.MonkeyPatch) -> None:
    from guidance_rules.recommendation import recommender as module

    monkeypatch.setattr(module, "_default", None)
    built = module.default_recommender()
    assert isinstance(built, Recommender) and module.default_recommender() is built
    assert built.knowledge.digest == default_knowledge().digest


def test_a_fire_hook_that_fails_is_an_engine_error_naming_the_stratum() -> None:
    def refuse(rule: str) -> None:
        raise ValueError("stop")

    rec = Recommender(on_fire=refuse)
    with pytest.raises(EngineError, match=r"^a rule action failed at stratum 1: ValueError\('stop'\)$"):
        rec.recommend(PRP_KNEE)
