"""The Recommender: answers only from validated values, immutable and picklable answers, and a
safe lifecycle (threads, fork, signal handlers, discarded Recommenders). Issue 9's findings."""

from __future__ import annotations

import concurrent.futures
import copy
import multiprocessing
import pickle
import subprocess
import sys
import textwrap
from typing import Any

import pytest
from pydantic import ValidationError

from guidance_rules import Case, EngineError, Modality, Recommender, recommend
from guidance_rules.errors import CaseError
from guidance_rules.model import LIST_LIMIT

KNEE = Case(site="knee", injectate="corticosteroid")


def fresh(**fields: Any) -> Any:
    return recommend(Case(**fields)).model_dump(mode="json")


# -- Case is plain data; every path answers from validated values only ---------------------------


def test_a_copy_with_a_changed_value_is_answered_for_that_value() -> None:
    recommend(KNEE)  # the original answered and cached first
    changed = KNEE.model_copy(update={"injectate": "cell_based"})
    assert recommend(changed).model_dump(mode="json") == fresh(site="knee", injectate="cell_based")
    assert recommend(changed).modality is not recommend(KNEE).modality


@pytest.mark.parametrize(
    ("update", "field"), [({"injectate": "bogus"}, "injectate"), ({"site": "nowhere"}, "site"), ({"palpable": 1}, "palpable")]
)
def test_a_copy_with_an_invalid_value_is_rejected(update: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        recommend(KNEE.model_copy(update=update))
    assert field in {e["loc"][0] for e in caught.value.errors()}


def test_a_copy_with_a_list_value_is_validated_not_crashed() -> None:
    changed = KNEE.model_copy(update={"anatomy_variance": ["effusion", "obesity", "effusion"]})
    assert recommend(changed).model_dump(mode="json") == fresh(
        site="knee", injectate="corticosteroid", anatomy_variance=["obesity", "effusion"]
    )


def test_model_construct_without_validation_is_validated_before_use() -> None:
    with pytest.raises(ValidationError):
        recommend(Case.model_construct(site="knee", injectate="bogus"))


def test_case_knows_no_rule_base() -> None:
    """An unknown site is plain data until a rule base resolves it (tests/test_layers.py checks
    that the model imports nothing of the rule base)."""
    case = Case(site="nowhere", injectate="prp")
    with pytest.raises(ValidationError, match="unknown site 'nowhere'"):
        recommend(case)


def test_contradictions_are_a_validation_error_located_at_the_fields_in_conflict() -> None:
    with pytest.raises(ValidationError) as caught:
        recommend({"region": "spinal", "tissue": "tendon_sheath", "depth": "deep", "injectate": "prp"})
    assert {e["loc"][0] for e in caught.value.errors()} == {"region", "tissue"}


def test_a_recommender_with_another_rule_base_validates_against_its_own_sites(rule_copy: Any) -> None:
    def drop_hip(data: dict[str, Any]) -> None:
        del data["sites"]["hip"]

    def drop_hip_scopes(data: dict[str, Any]) -> None:  # studies scoped to the hip alone would name a site that is gone
        for source in data["sources"].values():
            if source.get("scope") == {"site": ["hip"]}:
                del source["scope"]
            for proposition in source.get("propositions", {}).values():
                if proposition.get("scope") == {"site": ["hip"]}:
                    del proposition["scope"]

    folder = rule_copy("sites.yaml", drop_hip)
    rule_copy("sources.yaml", drop_hip_scopes)
    from guidance_rules import load

    other = Recommender(load(folder))
    hip = Case(site="hip", injectate="prp")
    recommend(hip)
    with pytest.raises(ValidationError, match="unknown site 'hip'"):
        other.recommend(hip)


@pytest.mark.parametrize("field", ["anatomy_variance", "available_modalities"])
def test_a_huge_list_fails_fast_with_one_error(field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        recommend({"site": "knee", "injectate": "prp", field: ["obesity"] * 1_000_000})
    assert len(caught.value.errors()) == 1 and f"at most {LIST_LIMIT}" in str(caught.value)


def test_deep_nesting_fails_fast_with_a_validation_error() -> None:
    nested: Any = "obesity"
    for _ in range(1_000):
        nested = [nested]
    with pytest.raises(ValidationError):
        recommend({"site": "knee", "injectate": "prp", "anatomy_variance": nested})
    with pytest.raises(ValidationError):
        recommend({"site": nested, "injectate": "prp"})


# -- no step repeats ----------------------------------------------------------------------------


def test_a_rule_matching_several_list_values_is_one_step() -> None:
    rec = recommend(Case(site="knee", injectate="prp", anatomy_variance=["obesity", "prior_surgery", "atypical_anatomy", "effusion"]))
    rules = list(rec.chain_rules())
    assert len(rules) == len(set(rules)), rules


# -- answers are immutable in fact, and still plain data ------------------------------------------


def test_dict_methods_cannot_alter_a_cached_answer() -> None:
    rec = recommend(Case(site="hip", injectate="prp"))
    before = rec.model_dump_json()
    facts = rec.reasoning[0].facts
    with pytest.raises(TypeError):
        dict.__setitem__(facts, "injected", True)  # type: ignore[index]
    with pytest.raises(AttributeError):  # no mutating method exists at all
        facts.update({"x": 1})  # type: ignore[attr-defined]
    with pytest.raises(ValidationError):
        rec.modality = Modality.LANDMARK  # type: ignore[misc]
    assert recommend(Case(site="hip", injectate="prp")).model_dump_json() == before


def test_answers_pickle_and_deep_copy() -> None:
    rec = recommend(Case(site="hip", injectate="cell_based", anatomy_variance=["obesity"]))
    assert pickle.loads(pickle.dumps(rec)) == rec
    assert copy.deepcopy(rec) == rec
    assert pickle.loads(pickle.dumps(rec)).model_dump_json() == rec.model_dump_json()


CASES = [{"site": site, "injectate": "prp"} for site in ("knee", "hip", "lumbar_facet", "a1_pulley", "sacroiliac")]


def test_answers_cross_process_pools() -> None:
    expected = [recommend(c) for c in CASES]
    context = multiprocessing.get_context("spawn")
    with context.Pool(2) as pool:
        assert pool.map_async(recommend, CASES).get(timeout=120) == expected
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=context) as executor:
        assert list(executor.map(recommend, CASES, timeout=120)) == expected


# -- lifecycle --------------------------------------------------------------------------------------


def test_fork_while_other_threads_recommend_does_not_deadlock_the_child() -> None:
    script = textwrap.dedent(
        """
        import os, sys, threading, time, warnings
        warnings.simplefilter("ignore", DeprecationWarning)
        from guidance_rules import Recommender
        rec = Recommender(cache_size=0)
        stop = threading.Event()
        def busy():
            i = 0
            while not stop.is_set():
                rec.recommend({"site": "knee", "injectate": "prp", "palpable": i % 2 == 0}); i += 1
        threads = [threading.Thread(target=busy) for _ in range(3)]
        for t in threads: t.start()
        time.sleep(0.2)
        for _ in range(20):
            pid = os.fork()
            if pid == 0:
                ok = rec.recommend({"site": "hip", "injectate": "prp"}).modality.value
                os._exit(0 if ok else 3)
            deadline = time.time() + 10
            while True:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done: break
                if time.time() > deadline:
                    os.kill(pid, 9); print("child deadlocked"); sys.exit(1)
                time.sleep(0.01)
            if os.waitstatus_to_exitcode(status) != 0: print("child failed"); sys.exit(1)
        stop.set()
        for t in threads: t.join()
        print("ok")
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=240)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stdout + result.stderr


def test_signal_handlers_calling_recommend_never_crash() -> None:
    """A handler that recommends while its thread is inside the engine is refused (EngineBusyError)
    or answered from the cache; before, re-entering the C engine segfaulted."""
    script = textwrap.dedent(
        """
        import signal, sys, time
        from guidance_rules import EngineBusyError, Recommender
        rec = Recommender(cache_size=0)
        counts = {"answered": 0, "busy": 0}
        def handler(signum, frame):
            try:
                rec.recommend({"site": "knee", "injectate": "cell_based"})
                counts["answered"] += 1
            except EngineBusyError:
                counts["busy"] += 1
        signal.signal(signal.SIGALRM, handler)
        signal.setitimer(signal.ITIMER_REAL, 0.001, 0.0017)
        end = time.time() + 2
        i = 0
        while time.time() < end:
            rec.recommend({"site": "knee", "injectate": "prp", "palpable": i % 2 == 0}); i += 1
        signal.setitimer(signal.ITIMER_REAL, 0, 0)
        print(counts["answered"] > 0, counts["busy"] > 0)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] == "True"


def test_a_signal_handler_during_the_first_recommend_is_refused_not_hung() -> None:
    """Issue 25: a handler calling recommend() while the process's first recommend() was still
    building the shared Recommender re-entered its lock and hung forever. Now it gets
    EngineBusyError; once built, handlers are answered or refused as before."""
    script = textwrap.dedent(
        """
        import signal, time
        from guidance_rules import EngineBusyError, recommend
        from guidance_rules.recommendation import recommender
        seen = {"during build": [], "after": []}
        def handler(signum, frame):
            when = "during build" if recommender._default is None else "after"
            if when == "during build":  # one signal, as a user's timer would send (several would nest)
                signal.setitimer(signal.ITIMER_REAL, 0, 0)
            try:
                recommend({"site": "knee", "injectate": "prp"})
                seen[when].append("answered")
            except EngineBusyError as error:
                seen[when].append("busy: shared recommender" if "still being built" in str(error) else "busy")
        signal.signal(signal.SIGALRM, handler)
        signal.setitimer(signal.ITIMER_REAL, 0.0005, 0.0005)
        first = recommend({"site": "hip", "injectate": "cell_based"})
        signal.setitimer(signal.ITIMER_REAL, 0.0005, 0.0005)
        end, i = time.time() + 0.3, 0
        while time.time() < end:
            recommend({"site": "knee", "injectate": "prp", "palpable": i % 2 == 0}); i += 1
        signal.setitimer(signal.ITIMER_REAL, 0, 0)
        print(first.modality.value, len(seen["during build"]), set(seen["during build"]), "answered" in seen["after"])
        """
    )
    try:
        result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail("a signal handler calling recommend() during the first recommend() hung the process")
    assert result.returncode == 0, result.stderr
    fields = result.stdout.strip().split(" ", 2)
    modality, during = fields[0], int(fields[1])
    assert modality == "ultrasound"
    assert during == 1, "no signal arrived while the shared recommender was being built: the test proved nothing"
    assert fields[2] == "{'busy: shared recommender'} True", result.stdout


def test_a_closed_recommender_refuses_to_evaluate() -> None:
    with Recommender(cache_size=0) as rec:
        rec.recommend(KNEE)
    with pytest.raises(EngineError, match="closed"):
        rec.recommend(KNEE)


def test_discarded_recommenders_free_their_engine() -> None:
    script = textwrap.dedent(
        """
        import gc, resource
        from guidance_rules import Recommender
        from guidance_rules.rulebase.load import default_knowledge
        kb = default_knowledge()
        def rss(): return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20
        for _ in range(20): Recommender(kb).recommend({"site": "knee", "injectate": "prp"})
        gc.collect(); before = rss()
        for _ in range(300): Recommender(kb).recommend({"site": "knee", "injectate": "prp"})
        gc.collect(); print(rss() - before)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    growth = float(result.stdout)
    assert growth < 40, f"300 discarded Recommenders grew RSS by {growth:.1f} MiB (about 0.5 MiB each leaks)"


def test_threads_get_the_single_threaded_answers() -> None:
    cases = [
        {"site": s, "injectate": i} for s in ("knee", "hip", "lumbar_facet", "biceps_tendon_sheath") for i in ("prp", "corticosteroid")
    ]
    expected = [Recommender(cache_size=0).recommend_json(c) for c in cases]
    rec = Recommender(cache_size=0)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda c: rec.recommend_json(c), cases * 50))
    assert got == expected * 50


def test_answer_json_is_pydantics_byte_for_byte() -> None:
    """The JSON joined from cached parts must equal `model_dump_json()` exactly."""
    from guidance_rules.rulebase.space import as_json_case, free_space

    rec = Recommender(cache_size=0)
    space = free_space()
    checked = 0
    for index in range(0, space.size, 997):
        case = as_json_case(space.case(index))
        try:
            text = rec.recommend_json(case)
        except ValidationError:
            continue
        assert text == rec.recommend(case).model_dump_json()
        checked += 1
    for site in ("hip", "knee", "epidural_transforaminal", "a1_pulley"):  # with evidence, cautions and questions
        case = {"site": site, "injectate": "cell_based", "anatomy_variance": ["obesity"]}
        assert rec.recommend_json(case) == rec.recommend(case).model_dump_json()
    assert checked > 100


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("near_neurovascular", "true"),  # the string matched no rule: the knee came out landmark
        ("palpable", 1),  # 1 == True in JSON comparisons, but it is not a resolved flag
        ("depth", "bogus"),
        ("anatomy_variance", "obesity"),  # a string, not a list
        ("approach", None),
    ],
)
def test_evaluate_refuses_values_the_rules_cannot_test(field: str, value: Any) -> None:
    """`evaluate` takes resolved values; hand-built ones outside the vocabulary are refused
    by name instead of answered as if they were some other value."""
    rec = Recommender()
    values = dict(rec.resolve({"site": "knee", "injectate": "corticosteroid"}).values)
    assert rec.evaluate(values).modality is Modality.LANDMARK  # the case the planted values change
    values[field] = value
    with pytest.raises(CaseError, match=rf"^{field}: .* is not a resolved value; valid: ") as raised:
        rec.evaluate(values)
    assert raised.value.fields == (field,)
    with pytest.raises(CaseError):
        rec.evaluate_many([dict(rec.resolve({"site": "hip", "injectate": "prp"}).values), values])
