"""scripts/mutate.py's accounting: an EQUIVALENT entry that a test catches names another mutant
(mutmut renumbers a function's mutants when a line is added), so it is counted as caught and named."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "mutate.py"


@pytest.fixture(scope="module")
def mutate() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mutate_script", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_a_listed_equivalent_that_survives_is_equivalent_and_one_caught_is_caught(mutate: ModuleType) -> None:
    listed = next(iter(mutate.EQUIVALENT))
    assert mutate.kind(listed, "survived") == "equivalent"
    assert mutate.kind(listed, "killed") == "killed"
    assert mutate.kind("pkg.mod.x_f__mutmut_1", "survived") == "survived"


def test_the_report_names_a_stale_entry_and_counts_it_caught(mutate: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    listed = next(name for name in mutate.EQUIVALENT if not name.startswith(tuple(mutate.IMPORT_TIME)))
    module = listed.split(".x", 1)[0]
    mutate.report("t", {listed: "killed", f"{module}.x_other__mutmut_1": "survived"})
    out = capsys.readouterr().out
    assert "50.0 %  1/2" in out
    assert "listed as equivalent but caught (1)" in out and f"    {listed}\n" in out
