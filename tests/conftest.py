"""Shared fixtures: the shipped rule base, and temporary copies of it to alter."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, settings

from guidance_rules.recommendation.recommender import Recommender
from guidance_rules.rulebase.domain import KnowledgeBase
from guidance_rules.rulebase.load import default_knowledge, default_rules_dir, load

# The parsed-rule-base cache of this test session lives in a folder of its own (subprocesses inherit it).
os.environ.setdefault("GUIDANCE_RULES_CACHE_DIR", tempfile.mkdtemp(prefix="guidance-rules-cache-"))

# CI runs a fixed, derandomised profile so a run is reproducible; "dev" explores more.
settings.register_profile("ci", max_examples=300, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=200, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


@pytest.fixture(scope="session")
def knowledge() -> KnowledgeBase:
    return default_knowledge()


@pytest.fixture(scope="session")
def recommender() -> Recommender:
    return Recommender()


def examples() -> list[tuple[str, dict[str, Any]]]:
    return [(p.stem, json.loads(p.read_text())) for p in sorted(EXAMPLES.glob("*.json"))]


class _PlainDumper(yaml.SafeDumper):
    """Writes shared objects out in full: rule files may not use anchors and aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


RuleEdit = Callable[[dict[str, Any]], None]


@pytest.fixture
def rule_copy(tmp_path: Path) -> Callable[[str, RuleEdit], Path]:
    """Copy the rule base, apply `edit` to one file's parsed YAML, and return the folder."""

    def make(file: str, edit: RuleEdit) -> Path:
        target = tmp_path / "rules"
        if not target.exists():
            shutil.copytree(default_rules_dir(), target)
        path = target / file
        data = yaml.safe_load(path.read_text())
        edit(data)
        path.write_text(yaml.dump(data, Dumper=_PlainDumper, sort_keys=False))
        return target

    return make


def find_rule(data: dict[str, Any], rule_id: str) -> dict[str, Any]:
    for rule in data["rules"]:
        if rule["id"] == rule_id:
            return rule  # type: ignore[no-any-return]
    raise KeyError(rule_id)


def load_copy(folder: Path) -> KnowledgeBase:
    return load(folder)


# Session fixtures that start something costly (a PostgreSQL cluster): their tests share one worker.
SHARED_SESSION_FIXTURES = ("postgres_url",)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under xdist's --dist loadgroup (scripts/test.sh), the tests of a module that share a
    module-scoped fixture (a started server, an installed wheel, a large rule base) run on one
    worker, so the fixture is built once, not once on each worker, and so do the tests of a costly
    session fixture; the other tests are spread one by one."""
    for item in items:
        if item.get_closest_marker("xdist_group") is not None or not isinstance(item, pytest.Function):
            continue
        defs = item._fixtureinfo.name2fixturedefs
        shared = [name for name in SHARED_SESSION_FIXTURES if name in defs]
        if shared:
            item.add_marker(pytest.mark.xdist_group(shared[0]))
        elif any(chain[-1].scope == "module" for chain in defs.values() if chain):
            item.add_marker(pytest.mark.xdist_group(item.module.__name__ if item.module else item.nodeid))
