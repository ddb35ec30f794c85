"""The README cannot drift (issue 25): every example block marked `<!-- readme: check NAME -->`
is re-run and compared with its text, and every other block says why it is not run.

When the output changed on purpose: `python -m tests.readme --update` (see tests/readme.py)."""

from __future__ import annotations

import re

import pytest

from tests import readme

CHECKED = readme.checked()


def test_every_block_is_checked_or_says_why_it_is_not() -> None:
    found = readme.blocks()  # raises Unmarked, naming each block without a marker
    assert [b.name for b in found if b.name] == [b.name for b in CHECKED]
    assert all(b.reason for b in found if not b.name)
    assert len(CHECKED) >= 5, "the README's example blocks lost their markers"


@pytest.mark.parametrize("block", CHECKED, ids=[str(b.name) for b in CHECKED])
def test_readme_example_prints_what_the_readme_shows(block: readme.Block) -> None:
    problem = readme.differs(block)
    assert problem is None, f"README block '{block.name}' drifted (python -m tests.readme --update rewrites it):\n{problem}"


def test_a_block_without_a_marker_is_refused() -> None:
    with pytest.raises(readme.Unmarked, match="line 3"):
        readme.blocks("text\n\n```\n$ guidance-rules rules\n```\n")


def test_excerpts_and_masks() -> None:
    assert readme.matches(["a", "...", "d"], ["a", "b", "c", "d"])
    assert readme.matches(["a", "   ...", "d"], ["a", "d"])
    assert not readme.matches(["a", "...", "d"], ["a", "b", "c"])
    assert not readme.matches(["a", "b"], ["a", "b", "c"])
    assert readme.matches(["rules (1.1.0, sha256:0a22d2989bc8)", "took 4.27 s"], ["rules (1.2.0, sha256:104cadd6a0e8)", "took 17 s"])
    assert not readme.matches(["20 cases changed"], ["21 cases changed"])


def test_update_keeps_an_excerpts_elisions() -> None:
    shown = ["title", "  x = 1", "   ...", "  3. step"]
    today = ["title", "  x = 2", "  2. other", "  more", "  3. step"]
    assert readme.updated(shown, today) == ["title", "  x = 2", "   ...", "  3. step"]
    # output after the last shown line is not cut off silently: it must be elided with '...'
    assert readme.updated(["a", "...", "c"], ["a", "b", "c", "d"]) == ["a", "...", "c", "d"]
    with pytest.raises(ValueError, match="no longer in the output"):
        readme.updated(["a", "...", "gone"], ["a", "b"])


def test_the_readme_names_no_file_outside_the_repository_and_only_files_that_exist() -> None:
    """A clone has no shared/ folder (issue 21, point 11); a path the README names must be there
    (it named guidance_rules/invariants.py after the module had moved to audit/, issue 25)."""
    text = readme.README.read_text()
    assert not re.findall(r"(?:\.\./)?\bshared/[\w./-]*", text), "the README refers to shared/, which a clone does not have"
    paths = re.findall(r"[`(]((?:docs|rules|tests|guidance_rules|scripts|benchmarks|examples|\.ci)/[\w./-]*?)[`)]", text)
    assert len(paths) >= 10
    missing = sorted({p for p in paths if not (readme.ROOT / p).exists()})
    assert not missing, f"the README names files that do not exist: {missing}"
