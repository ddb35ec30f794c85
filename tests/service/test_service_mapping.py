"""The FHIR mapping file: checked against the rule base, covered by the ruleset digest."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from guidance_rules.errors import RuleFileError
from guidance_rules.rulebase.load import default_knowledge, default_rules_dir, load
from guidance_rules.service.mapping import FILE, load_mapping


def test_every_catalogue_site_is_mapped_or_declared_unverified() -> None:
    knowledge = default_knowledge()
    mapping = load_mapping(knowledge)
    mapped = {b.site for b in mapping.spec.body_sites}
    assert set(knowledge.sites) == mapped | set(mapping.spec.unverified_sites)
    assert not mapped & set(mapping.spec.unverified_sites)


def test_knee_joint_not_knee_region() -> None:
    mapping = load_mapping(default_knowledge())
    assert mapping.body_sites[("http://snomed.info/sct", "49076000")].site == "knee"
    assert ("http://snomed.info/sct", "72696002") not in mapping.body_sites
    assert ("http://snomed.info/sct", "72696002") in mapping.regions


@pytest.fixture
def rules_copy(tmp_path: Path) -> Path:
    target = tmp_path / "rules"
    shutil.copytree(default_rules_dir(), target)
    return target


def test_digest_covers_the_mapping(rules_copy: Path) -> None:
    before = load(rules_copy).digest
    path = rules_copy / FILE
    path.write_text(path.read_text() + "\n# edited\n")
    assert load(rules_copy).digest != before


def test_unknown_site_in_the_mapping_is_rejected(rules_copy: Path) -> None:
    path = rules_copy / FILE
    path.write_text(path.read_text().replace("site: knee, source", "site: kneee, source", 1))
    with pytest.raises(RuleFileError, match=r"kneee.*not a catalogue site"):
        load_mapping(load(rules_copy))


def test_uncited_code_is_rejected(rules_copy: Path) -> None:
    path = rules_copy / FILE
    path.write_text(path.read_text().replace("source: dicom-cid-1006}", "source: hearsay}", 1))
    with pytest.raises(RuleFileError, match="unknown source 'hearsay'"):
        load_mapping(load(rules_copy))


def test_mixture_precedence_must_list_every_injectate_once(rules_copy: Path) -> None:
    path = rules_copy / FILE
    path.write_text(path.read_text().replace("precedence: [cell_based, prp,", "precedence: [prp,", 1))
    with pytest.raises(RuleFileError, match=r"combined_injectates.*each injectate once: corticosteroid"):
        load_mapping(load(rules_copy))
