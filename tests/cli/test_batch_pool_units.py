"""`batch` with worker processes, run in this process: the module's pool is replaced by a stand-in
that answers each job here when its result is asked for (mutmut does not follow forked or spawned
workers), so planted faults in the pooled path and the worker's function are reached. What is
checked is what a user relies on: the same records, in input order, as without workers; a pool
only for long inputs, with the workers asked for; repeated cases answered once; memory bounded by
at most two blocks per worker in flight. Written against the mutation run of issue 24."""

from __future__ import annotations

import io
import itertools
import json
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from guidance_rules import Recommender
from guidance_rules.cli import batch as module
from guidance_rules.cli import main
from guidance_rules.cli.batch import process
from guidance_rules.cli.inputs import read_jsonl
from guidance_rules.recommendation.pool import RuleBase, forget
from guidance_rules.rulebase.load import load

SITES = ("knee", "hip")
INJECTATES = ("corticosteroid", "local_anesthetic", "hyaluronic_acid", "prp", "cell_based", "other")
CASES = [{"site": s, "injectate": i} for s, i in itertools.product(SITES, INJECTATES)]


def jsonl(cases: Sequence[Any]) -> bytes:
    return b"".join((c if isinstance(c, bytes) else json.dumps(c).encode()) + b"\n" for c in cases)


class Result:
    """A job's result, computed when asked for (as a worker's would arrive later)."""

    def __init__(self, pool: InlinePool, job: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.pool, self.job, self.args = pool, job, args

    def get(self) -> Any:
        self.pool.in_flight -= 1
        return self.job(*self.args)


class InlinePool:
    """The worker pool's stand-in: records what it was given and how many jobs were in flight."""

    def __init__(self, workers: int, bases: Sequence[RuleBase]) -> None:
        self.workers, self.bases = workers, list(bases)
        self.jobs: list[tuple[Any, ...]] = []
        self.in_flight = self.most = 0

    def apply_async(self, job: Callable[..., Any], args: tuple[Any, ...]) -> Result:
        self.jobs.append(args)
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        return Result(self, job, args)


@pytest.fixture
def pools(monkeypatch: pytest.MonkeyPatch) -> list[InlinePool]:
    """Every pool the batch starts, answered in this process; blocks of 2, a pool after 4 records."""
    started: list[InlinePool] = []

    @contextmanager
    def worker_pool(workers: int, bases: Sequence[RuleBase]) -> Iterator[InlinePool]:
        started.append(InlinePool(workers, bases))
        yield started[-1]
        assert started[-1].in_flight == 0, "the pool was left with jobs whose answers were not written"

    monkeypatch.setattr(module, "worker_pool", worker_pool)
    monkeypatch.setattr(module, "BLOCK", 2)
    monkeypatch.setattr(module, "POOL_AFTER", 4)
    forget()  # each test's workers build their Recommender from the rule files named
    return started


def alone(recommender: Recommender, data: bytes) -> bytes:
    """The records `process` writes without workers: what the pooled run must write too."""
    out = io.BytesIO()
    process(read_jsonl(io.BytesIO(data)), recommender, out)
    return out.getvalue()


def test_pooled_blocks_give_the_records_of_a_run_without_workers_in_input_order(pools: list[InlinePool]) -> None:
    data = jsonl([*CASES[:3], {"site": "knee"}, b"{broken", *CASES[3:], CASES[0], {"site": "hip"}, *CASES[5:8]])
    out = io.BytesIO()
    tally = process(read_jsonl(io.BytesIO(data)), Recommender(), out, workers=3)
    expected = alone(Recommender(), data)
    assert out.getvalue() == expected
    lines = [json.loads(line) for line in expected.splitlines()]
    assert [r["line"] for r in lines] == list(range(1, 20))
    assert (tally.good + tally.invalid, tally.invalid, tally.failed, tally.last_line) == (19, sum("errors" in r for r in lines), 0, 19)
    assert tally.invalid >= 3
    [pool] = pools
    assert pool.workers == 3
    knowledge = Recommender().knowledge
    assert [(b.directory, b.digest) for b in pool.bases] == [(str(knowledge.directory), knowledge.digest)]
    assert all(base == pool.bases[0] for base, _ in pool.jobs)


def test_a_pool_starts_only_after_the_first_records_and_only_for_workers(pools: list[InlinePool]) -> None:
    four = jsonl(CASES[:4])
    out = io.BytesIO()
    assert process(read_jsonl(io.BytesIO(four)), Recommender(), out, workers=2).total == 4
    assert pools == [] and out.getvalue() == alone(Recommender(), four)
    five = jsonl(CASES[:5])
    out = io.BytesIO()
    assert process(read_jsonl(io.BytesIO(five)), Recommender(), out, workers=1).total == 5
    assert pools == [] and out.getvalue() == alone(Recommender(), five)
    out = io.BytesIO()
    assert process(read_jsonl(io.BytesIO(five)), Recommender(), out, workers=2).total == 5
    [pool] = pools
    assert [cases for _, cases in pool.jobs] == [[CASES[4]]]  # the first four answered here
    assert out.getvalue() == alone(Recommender(), five)


def test_cases_answered_before_are_not_sent_to_the_workers(pools: list[InlinePool]) -> None:
    data = jsonl([CASES[0], CASES[1], CASES[0], CASES[2], CASES[1], CASES[3], CASES[0], CASES[2], CASES[4], CASES[4], {"site": "knee"}])
    out = io.BytesIO()
    process(read_jsonl(io.BytesIO(data)), Recommender(), out, workers=2)
    [pool] = pools
    # the first blocks' cases come from the memo, a case repeated in a block is sent once
    assert [cases for _, cases in pool.jobs] == [[CASES[3]], [], [CASES[4]], [{"site": "knee"}]]
    assert out.getvalue() == alone(Recommender(), data)


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_at_most_two_blocks_per_worker_are_in_flight(pools: list[InlinePool], workers: int) -> None:
    data = jsonl(CASES * 2)
    out = io.BytesIO()
    process(read_jsonl(io.BytesIO(data)), Recommender(), out, workers=workers + 1)
    [pool] = pools
    assert len(pool.jobs) == (24 - 4) // 2
    assert pool.most == 2 * (workers + 1)  # the workers kept busy, the memory bounded
    assert out.getvalue() == alone(Recommender(), data)


def test_a_case_the_rule_base_cannot_answer_is_failed_by_the_workers_too(pools: list[InlinePool], rule_copy: Any) -> None:
    def narrow(data: dict[str, Any]) -> None:
        [rule] = [r for r in data["rules"] if r["id"] == "LM-FAVOURABLE"]
        rule["when"]["target_size"] = "small"

    gap = load(rule_copy("landmark.yaml", narrow))
    knee = {"site": "knee", "injectate": "prp"}
    data = jsonl([*CASES[6:10], knee, CASES[6], knee, {"site": "knee"}])
    out = io.BytesIO()
    tally = process(read_jsonl(io.BytesIO(data)), Recommender(gap, cache_size=0), out, workers=2)
    expected = alone(Recommender(gap, cache_size=0), data)
    assert out.getvalue() == expected
    lines = [json.loads(line) for line in expected.splitlines()]
    assert lines[4]["errors"][0]["message"].startswith("the rule base could not answer this case")
    assert lines[6] == {**lines[4], "line": 7}
    assert (tally.good, tally.invalid, tally.failed) == (5, 1, 2)
    [pool] = pools
    assert [cases for _, cases in pool.jobs] == [[knee], [knee, {"site": "knee"}]]  # a failure is not remembered
    assert pool.bases == [RuleBase(str(gap.directory), gap.digest, module.WORKER_CACHE)]


def test_the_worker_answers_from_the_rule_base_it_is_given(rule_copy: Any) -> None:
    forget()
    default = Recommender().knowledge
    base = RuleBase(str(default.directory), default.digest, 0)
    bodies = module._worker_answer(base, [CASES[0], {"site": "knee"}])
    assert [kind for kind, _ in bodies] == ["good", "invalid"]
    assert bodies[0][1] == b'"recommendation":' + Recommender().recommend_json(CASES[0]).encode()
    assert json.loads(b"{" + bodies[1][1] + b"}")["errors"][0]["field"] == "injectate"


def test_the_command_uses_the_workers_asked_for_else_one_per_core(
    pools: list[InlinePool], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    data = jsonl(CASES)
    source.write_bytes(data)
    assert main(["batch", str(source), "--out", str(target), "--workers", "3"]) == 0
    assert target.read_bytes() == alone(Recommender(), data)
    monkeypatch.setattr(os, "cpu_count", lambda: 5)
    assert main(["batch", str(source), "--workers", "2", "--id-column", "site"]) == 0
    out, _ = capsysbinary.readouterr()
    assert out.splitlines()[0].startswith(b'{"line":1,"id":"knee","recommendation":')
    assert main(["batch", str(source)]) == 0
    monkeypatch.setattr(os, "cpu_count", lambda: None)
    assert main(["batch", str(source)]) == 0  # the core count unknown: one worker, no pool
    assert [p.workers for p in pools] == [3, 2, 5]
    out, _ = capsysbinary.readouterr()
    assert out == alone(Recommender(), data) * 2
