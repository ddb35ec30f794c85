"""Loading the rule base: structure, sources, citations, and load errors that name file, rule and key."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from guidance_rules.errors import RuleFileError
from guidance_rules.rulebase.domain import KnowledgeBase
from guidance_rules.rulebase.load import default_rules_dir, load
from tests.conftest import ROOT, find_rule

CONTRACT_SITES = [
    "knee",
    "hip",
    "glenohumeral",
    "subacromial_bursa",
    "acromioclavicular",
    "biceps_tendon_sheath",
    "elbow",
    "radiocarpal",
    "first_cmc",
    "carpal_tunnel",
    "first_dorsal_compartment",
    "a1_pulley",
    "greater_trochanteric_bursa",
    "tibiotalar",
    "subtalar",
    "plantar_fascia",
    "lumbar_facet",
    "lumbar_medial_branch",
    "epidural_interlaminar",
    "epidural_transforaminal",
    "sacroiliac",
]


def all_citations(kb: KnowledgeBase) -> set[tuple[str, str]]:
    cited = {c for rule in kb.rules for c in rule.cited} | set(kb.policy.cited)
    cited |= {(e.source, e.locator) for site in kb.sites.values() for e in site.evidence}
    return cited


def test_every_contract_site_is_in_the_catalogue(knowledge: KnowledgeBase) -> None:
    assert set(CONTRACT_SITES) <= set(knowledge.sites)


def test_every_proposition_is_cited(knowledge: KnowledgeBase) -> None:
    cited = {locator for source, locator in all_citations(knowledge) if source == "article"}
    missing = [p for p in knowledge.propositions() if p not in cited]
    assert not missing, f"propositions no rule or output element cites: {missing}"


def test_declared_propositions_match_the_documented_breakdown(knowledge: KnowledgeBase) -> None:
    """docs/knowledge.md lists the article's propositions (in the repository: the test used to skip
    when a folder outside the clone was missing)."""
    text = (ROOT / "docs" / "knowledge.md").read_text()
    documented = re.findall(r"\*\*([A-Z]{1,2}\d)\*\*", text)
    assert len(documented) >= 30
    assert list(knowledge.propositions()) == documented


def test_every_rule_cites_known_sources(knowledge: KnowledgeBase) -> None:
    for rule in knowledge.rules:
        assert rule.sources, rule.id
        for citation in rule.sources:
            assert citation.source in knowledge.sources, (rule.id, citation.source)


def test_sites_with_evidence_name_their_source(knowledge: KnowledgeBase) -> None:
    for site in knowledge.sites.values():
        assert site.evidence, f"{site.key} has no evidence"
        assert all(e.source in knowledge.sources for e in site.evidence)


def test_digest_changes_with_any_rule_file(rule_copy: Any, knowledge: KnowledgeBase) -> None:
    folder = rule_copy("questions.yaml", lambda data: find_rule(data, "Q-ACCURACY").update(title="Published accuracy, reworded"))
    assert load(folder).digest != knowledge.digest


def _expect_error(folder: Path, file: str, rule: str | None, key: str | None) -> RuleFileError:
    with pytest.raises(RuleFileError) as caught:
        load(folder)
    error = caught.value
    assert (error.file, error.rule, error.key) == (file, rule, key), str(error)
    return error


def test_unknown_field_in_a_condition(rule_copy: Any) -> None:
    folder = rule_copy("landmark.yaml", lambda d: find_rule(d, "LU-SMALL")["when"].update(size="small"))
    error = _expect_error(folder, "landmark.yaml", "LU-SMALL", "when.size")
    assert "valid fields" in str(error)


def test_unknown_value_in_a_condition(rule_copy: Any) -> None:
    folder = rule_copy("landmark.yaml", lambda d: find_rule(d, "LU-DEPTH")["when"].update(depth=["medium"]))
    error = _expect_error(folder, "landmark.yaml", "LU-DEPTH", "when.depth")
    assert "superficial, intermediate, deep" in str(error)


def test_equipment_is_not_visible_to_rating_rules(rule_copy: Any) -> None:
    folder = rule_copy("ultrasound.yaml", lambda d: find_rule(d, "RATE-US-FIT")["when"].update(available_modalities=["ultrasound"]))
    _expect_error(folder, "ultrasound.yaml", "RATE-US-FIT", "when.available_modalities")


def test_missing_key_names_the_rule(rule_copy: Any) -> None:
    folder = rule_copy("imaging.yaml", lambda d: find_rule(d, "DC-CELL-BASED").pop("sources"))
    _expect_error(folder, "imaging.yaml", "DC-CELL-BASED", "sources")


def test_unknown_source(rule_copy: Any) -> None:
    folder = rule_copy("imaging.yaml", lambda d: find_rule(d, "DC-CELL-BASED")["sources"].append({"source": "blog", "locator": "x"}))
    error = _expect_error(folder, "imaging.yaml", "DC-CELL-BASED", "sources.2")
    assert "unknown source 'blog'" in str(error)


def test_unknown_proposition(rule_copy: Any) -> None:
    folder = rule_copy("imaging.yaml", lambda d: find_rule(d, "DC-CELL-BASED")["sources"].append({"source": "article", "locator": "ZZ9"}))
    _expect_error(folder, "imaging.yaml", "DC-CELL-BASED", "sources.2")


def test_undeclared_derived_fact(rule_copy: Any) -> None:
    folder = rule_copy("imaging.yaml", lambda d: find_rule(d, "DC-CELL-BASED")["then"].update(derive="precious"))
    _expect_error(folder, "imaging.yaml", "DC-CELL-BASED", "then.derive")


def test_malformed_yaml_names_the_file(rule_copy: Any) -> None:
    folder = rule_copy("imaging.yaml", lambda d: None)
    (folder / "imaging.yaml").write_text("rules: [ {id: X, \n")
    with pytest.raises(RuleFileError, match=r"^imaging.yaml: not valid YAML"):
        load(folder)


def test_yaml_is_never_executed(rule_copy: Any, tmp_path: Path) -> None:
    folder = rule_copy("imaging.yaml", lambda d: None)
    marker = tmp_path / "executed"
    (folder / "imaging.yaml").write_text(f"rules: !!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(RuleFileError):
        load(folder)
    assert not marker.exists()


def test_stray_rule_file_is_not_silently_ignored(rule_copy: Any) -> None:
    folder = rule_copy("imaging.yaml", lambda d: None)
    (folder / "extra.yaml").write_text("rules: []\n")
    _expect_error(folder, "ruleset.yaml", None, "rule_files")


def test_duplicate_rule_id(rule_copy: Any) -> None:
    folder = rule_copy("imaging.yaml", lambda d: d["rules"].append(dict(d["rules"][0])))
    _expect_error(folder, "imaging.yaml", "DC-CELL-BASED", "id")


def test_cycle_among_derived_facts_is_found_at_load(rule_copy: Any) -> None:
    folder = rule_copy("landmark.yaml", lambda d: find_rule(d, "LU-SMALL")["when"].update(imaging_indicated=True))
    with pytest.raises(RuleFileError, match="cycle among derived facts"):
        load(folder)


def test_bad_site_default_value(rule_copy: Any) -> None:
    folder = rule_copy("sites.yaml", lambda d: d["sites"]["knee"]["defaults"].update(depth="shallow"))
    _expect_error(folder, "sites.yaml", None, "sites.knee.defaults.depth")


# -- hostile rule directories (issue 9) ------------------------------------------------------------


def _copy(tmp_path: Path) -> Path:
    target = tmp_path / "rules"
    shutil.copytree(default_rules_dir(), target)
    return target


def test_a_fifo_named_yaml_is_refused_not_waited_on(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    (folder / "landmark.yaml").unlink()
    os.mkfifo(folder / "landmark.yaml")
    with pytest.raises(RuleFileError, match=r"landmark\.yaml: not a regular file"):
        load(folder)


def test_a_link_to_a_device_is_refused_not_read_forever(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    (folder / "landmark.yaml").unlink()
    (folder / "landmark.yaml").symlink_to("/dev/zero")
    with pytest.raises(RuleFileError, match="not a regular file"):
        load(folder)


def test_a_symlink_loop_is_a_rule_file_error(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    (folder / "landmark.yaml").unlink()
    (folder / "landmark.yaml").symlink_to(folder / "landmark.yaml")
    with pytest.raises(RuleFileError, match=r"landmark\.yaml: cannot be read"):
        load(folder)


def test_an_alias_bomb_is_refused_at_load(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    path = folder / "imaging.yaml"
    bomb = "".join(f"x{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]\n" for i in range(1, 10))
    text = path.read_text().replace("rules:", "bomb_base: &a0 [1]\n" + bomb + "rules:", 1)
    path.write_text(text)
    with pytest.raises(RuleFileError, match="anchors and aliases"):
        load(folder)


def test_an_alias_inside_a_rules_examples_is_refused(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    path = folder / "imaging.yaml"
    text = path.read_text()
    assert "fires: [" in text or "fires:" in text
    data = yaml.safe_load(text)
    first = data["rules"][0]
    first["examples"]["silent"] = [first["examples"]["fires"][0]]
    path.write_text(yaml.safe_dump(data, sort_keys=False))  # safe_dump writes the shared case as an alias
    assert "*id" in path.read_text()
    with pytest.raises(RuleFileError, match="anchors and aliases"):
        load(folder)


@pytest.mark.parametrize(
    ("file", "original", "duplicated"),
    [
        ("landmark.yaml", "    when: {depth: superficial, ", "    when: {depth: deep, depth: superficial, "),
        ("sites.yaml", "  knee:\n", "  knee:\n    title: duplicate\n  knee:\n"),
    ],
)
def test_a_key_given_twice_is_refused(tmp_path: Path, file: str, original: str, duplicated: str) -> None:
    folder = _copy(tmp_path)
    path = folder / file
    text = path.read_text()
    assert original in text
    path.write_text(text.replace(original, duplicated, 1))
    with pytest.raises(RuleFileError, match="given twice"):
        load(folder)


def test_ruleset_may_not_name_a_file_outside_the_directory(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "landmark.yml").write_text((folder / "landmark.yaml").read_text())
    path = folder / "ruleset.yaml"
    path.write_text(path.read_text().replace("landmark.yaml,", "../elsewhere/landmark.yml,"))
    (folder / "landmark.yaml").unlink()
    with pytest.raises(RuleFileError, match="plain file name"):
        load(folder)


def test_the_digest_covers_every_file_read(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    before = load(folder).digest
    for name in ("questions.yaml", "sources.yaml", "ruleset.yaml"):
        path = folder / name
        path.write_text(path.read_text() + "\n# an edit\n")
        after = load(folder).digest
        assert after != before, name
        before = after
