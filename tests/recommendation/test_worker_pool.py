"""The worker-pool helper the audit, the rule-change diff and batch share: one Recommender per rule
base per process, refused when the rule files changed since the work was planned, and a pool
whose jobs name their rule base."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from guidance_rules.errors import RuleFileError
from guidance_rules.recommendation import pool
from guidance_rules.recommendation.pool import RuleBase, worker_pool, worker_recommender
from guidance_rules.rulebase.load import default_rules_dir, load


def shipped(cache_size: int = 0) -> RuleBase:
    return RuleBase(str(default_rules_dir().resolve()), load(default_rules_dir()).digest, cache_size)


def test_one_recommender_per_rule_base_per_process() -> None:
    pool.forget()
    first = worker_recommender(shipped())
    assert worker_recommender(shipped()) is first
    assert worker_recommender(shipped(cache_size=16)) is not first  # another cache size is another Recommender


def test_the_oldest_rule_base_is_dropped_past_keep(tmp_path: Path) -> None:
    pool.forget()
    bases = [shipped(cache_size=n) for n in range(pool.KEEP + 1)]
    built = [worker_recommender(b) for b in bases]
    assert worker_recommender(bases[-1]) is built[-1]
    assert worker_recommender(bases[0]) is not built[0]  # dropped, so built again


def test_changed_rule_files_are_refused(tmp_path: Path) -> None:
    copy = tmp_path / "rules"
    shutil.copytree(default_rules_dir(), copy)
    planned = RuleBase(str(copy), load(copy).digest)
    (copy / "landmark.yaml").write_text((copy / "landmark.yaml").read_text().replace("status: active", "status: retired", 1))
    pool.forget()
    with pytest.raises(RuleFileError, match="changed while the work ran"):
        worker_recommender(planned)


def _digest(base: RuleBase) -> str:
    return worker_recommender(base).knowledge.digest


def test_a_pool_answers_from_its_own_processes_and_raises_a_jobs_error() -> None:
    base = shipped()
    wrong = RuleBase(base.directory, "sha256:" + "0" * 64)
    with worker_pool(2, [base, wrong]) as workers:  # the wrong base fails in each worker's start-up: left to its job
        assert workers.map(_digest, [base, base]) == [base.digest, base.digest]
        with pytest.raises(RuleFileError, match="changed while the work ran"):
            workers.apply(_digest, (wrong,))


def test_errors_cross_processes() -> None:
    """Before: RuleFileError (two arguments) could not be unpickled, so a worker raising it killed the
    pool's result thread and the audit waited forever; the test above hung."""
    import pickle

    from guidance_rules.errors import CaseError, InputError

    for error in (
        RuleFileError("rules", "bad key", rule="R-1", key="when"),
        CaseError(("site",), "unknown site 'kne'", "unknown_site"),
        InputError([("input", "'x' not found")]),
    ):
        back = pickle.loads(pickle.dumps(error))
        assert type(back) is type(error) and str(back) == str(error) and back.__dict__ == error.__dict__
