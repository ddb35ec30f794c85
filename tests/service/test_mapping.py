"""The FHIR mapping file: checked against the rule base, covered by the ruleset digest."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from guidance_rules.errors import RuleFileError
from guidance_rules.rulebase.domain import KnowledgeBase
from guidance_rules.rulebase.load import default_knowledge, default_rules_dir, load
from guidance_rules.service.mapping import FILE, load_mapping


def test_every_catalogue_site_is_mapped_or_declared_unverified() -> None:
    knowledge = default_knowledge()
    spec = load_mapping(knowledge).spec
    groups = [{b.site for b in spec.body_sites}, set(spec.unverified_sites), set(spec.procedure_sites)]
    assert set(knowledge.sites) == set().union(*groups)
    assert sum(len(g) for g in groups) == len(knowledge.sites)  # each site in one group only


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


def planted(rules: Path, old: str, new: str) -> KnowledgeBase:
    """The rule base with the mapping's first `old` replaced by `new` (which must be there: a
    planted fault that changed nothing would prove nothing)."""
    path = rules / FILE
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))
    return load(rules)


def test_digest_covers_the_mapping(rules_copy: Path) -> None:
    before = load(rules_copy).digest
    path = rules_copy / FILE
    path.write_text(path.read_text() + "\n# edited\n")
    assert load(rules_copy).digest != before


def test_unknown_site_in_the_mapping_is_rejected(rules_copy: Path) -> None:
    with pytest.raises(RuleFileError, match=r"kneee.*not a catalogue site"):
        load_mapping(planted(rules_copy, "site: knee, source", "site: kneee, source"))


def test_uncited_code_is_rejected(rules_copy: Path) -> None:
    with pytest.raises(RuleFileError, match="unknown source 'hearsay'"):
        load_mapping(planted(rules_copy, "source: dicom-cid-1006}", "source: hearsay}"))


def test_mixture_precedence_must_list_every_injectate_once(rules_copy: Path) -> None:
    with pytest.raises(RuleFileError, match=r"combined_injectates.*each injectate once: corticosteroid"):
        load_mapping(planted(rules_copy, "precedence: [cell_based, prp,", "precedence: [prp,"))


def test_a_procedure_site_needs_a_procedure_that_names_it(rules_copy: Path) -> None:
    with pytest.raises(RuleFileError, match="'epidural_transforaminal' is reached by its procedure code, but no procedure names it"):
        named = "site: epidural_transforaminal, family: transforaminal"
        planted(rules_copy, named, "family: transforaminal")  # 64483, then 0230T
        load_mapping(planted(rules_copy, named, "family: transforaminal"))


def test_rxnorm_codes_carry_their_term_type() -> None:
    meds = load_mapping(default_knowledge()).spec.medications
    rxnorm = [m for m in meds if m.system == "http://www.nlm.nih.gov/research/umls/rxnorm"]
    assert rxnorm and all(m.tty for m in rxnorm)
    assert all(m.tty is None for m in meds if m not in rxnorm)
    # an SBD is its SCD's name with the brand in brackets
    assert all(m.display.endswith("]") == (m.tty == "SBD") for m in rxnorm)


def test_joint_size_must_be_one_of_the_families(rules_copy: Path) -> None:
    with pytest.raises(RuleFileError, match="'huge_joint' for knee is not one of small_joint, intermediate_joint, major_joint"):
        load_mapping(planted(rules_copy, "{knee: major_joint,", "{knee: huge_joint,"))


def test_prefetch_asks_for_the_observation_codes_the_mapping_reads(rules_copy: Path) -> None:
    """The discovery's prefetch is derived from the mapping: an observation row added to the file
    is asked for (a second code also drops `_count=1`, which would hide one code's value)."""
    shipped = load_mapping(default_knowledge()).prefetch()["observations"]
    assert "code=http://loinc.org|39156-5&" in shipped and shipped.endswith("&_count=1")
    path = rules_copy / FILE
    text = path.read_text()
    [row] = [line for line in text.splitlines(keepends=True) if 'code: "39156-5"' in line]
    path.write_text(text.replace(row, row + row.replace('"39156-5"', '"59574-4"')))
    planted = load_mapping(load(rules_copy)).prefetch()["observations"]
    assert "code=http://loinc.org|39156-5,http://loinc.org|59574-4&" in planted
    assert "_count" not in planted and planted.startswith("Observation?patient={{context.patientId}}&")


def test_a_level_code_must_add_to_a_listed_first_level_code(rules_copy: Path) -> None:
    with pytest.raises(RuleFileError, match="adds_to 64999: not listed under procedures"):
        load_mapping(planted(rules_copy, 'adds_to: ["64483"]', 'adds_to: ["64999"]'))


def test_a_level_code_needs_its_guidance_column(rules_copy: Path) -> None:
    with pytest.raises(RuleFileError, match=r"code 0231T has no column in level_variants\.transforaminal_level"):
        load_mapping(planted(rules_copy, 'ultrasound: "0231T"}', "}"))


def test_a_code_left_out_on_purpose_cannot_also_be_mapped(rules_copy: Path) -> None:
    """The list of codes not mapped stays true: listing a mapped code there is refused."""
    with pytest.raises(RuleFileError, match=r"HCPCSReleaseCodeSets\|J3301 is listed as not mapped but is mapped"):
        load_mapping(planted(rules_copy, 'code: "J7329", kind: medication', 'code: "J3301", kind: medication'))
