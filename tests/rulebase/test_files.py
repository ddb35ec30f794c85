"""Reading rule files: the parsed-data cache answers a repeated load exactly as parsing does, is
keyed by every file's bytes, survives damage, and never runs (or is needed by) any code."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from guidance_rules.engine.compile import compile_rules
from guidance_rules.rulebase import files
from guidance_rules.rulebase.domain import KnowledgeBase
from guidance_rules.rulebase.load import default_rules_dir, load
from tests.conftest import ROOT


def _fingerprint(kb: KnowledgeBase) -> tuple[object, ...]:
    """Everything the engine and the explanations use, in a comparable form."""
    return (
        kb.digest,
        compile_rules(kb).ruleset_json,
        [(r.id, r.conclusion, r.rationale, r.sources, r.fires, r.silent, r.overrides, r.text) for r in kb.rules],
        {k: (s.title, dict(s.defaults), s.evidence) for k, s in kb.sites.items()},
        kb.sources,
        kb.tissue_defaults,
        kb.field_defaults,
        kb.constraints,
        kb.policy,
    )


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("GUIDANCE_RULES_CACHE_DIR", str(folder))
    monkeypatch.delenv("GUIDANCE_RULES_CACHE", raising=False)
    return folder


def _never_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(name: str, raw: bytes) -> object:
        raise AssertionError(f"{name} was parsed although the cache holds it")

    monkeypatch.setattr(files, "_parse_yaml", refuse)


def test_a_second_load_is_answered_from_the_cache_identically(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fresh = load(default_rules_dir())
    assert len(list(cache.glob("rules-*.json"))) == 1
    _never_parse(monkeypatch)
    cached = load(default_rules_dir())
    assert _fingerprint(cached) == _fingerprint(fresh)


def test_any_edit_to_any_file_is_parsed_again(cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "rules"
    shutil.copytree(default_rules_dir(), folder)
    load(folder)
    path = folder / "landmark.yaml"
    path.write_text(path.read_text().replace("version: 1", "version: 7", 1))
    assert any(r.version == 7 for r in load(folder).rules)
    (folder / "sources.yaml").write_text((folder / "sources.yaml").read_text() + "\n# comment\n")
    parsed: list[str] = []
    original = files._parse_yaml
    monkeypatch.setattr(files, "_parse_yaml", lambda name, raw: parsed.append(name) or original(name, raw))
    load(folder)
    assert "sources.yaml" in parsed


def test_a_damaged_or_foreign_cache_entry_is_ignored(cache: Path) -> None:
    expected = _fingerprint(load(default_rules_dir()))
    (entry,) = cache.glob("rules-*.json")
    for damage in ("{not json", '{"format": 1, "key": "another", "files": {}}', f'{{"format": 1, "key": "{entry.stem[6:]}", "files": []}}'):
        entry.write_text(damage)
        assert _fingerprint(load(default_rules_dir())) == expected


def test_the_cache_can_be_turned_off(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GUIDANCE_RULES_CACHE", "off")
    load(default_rules_dir())
    assert not cache.exists()


def test_an_unwritable_cache_folder_costs_nothing_but_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("GUIDANCE_RULES_CACHE_DIR", str(blocker / "cache"))
    assert load(default_rules_dir()).rules


def test_checks_after_parsing_still_run_on_a_cached_load(cache: Path, tmp_path: Path) -> None:
    """The cache holds parsed data only: a rule base that fails its checks fails from the cache too."""
    folder = tmp_path / "rules"
    shutil.copytree(default_rules_dir(), folder)
    (folder / "facts.yaml").write_text((folder / "facts.yaml").read_text().replace("landmark_unreliable", "landmark_unreliabel", 1))
    from guidance_rules.errors import RuleFileError

    for _ in range(2):  # parsed, then cached
        with pytest.raises(RuleFileError):
            load(folder)


def test_the_command_line_does_not_import_yaml_once_cached(cache: Path) -> None:
    code = "import sys; from guidance_rules.cli import main; main(['rules']); print('yaml' in sys.modules, file=sys.stderr)"
    first = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    second = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert first.stderr.strip().endswith("True") and second.stderr.strip().endswith("False")
