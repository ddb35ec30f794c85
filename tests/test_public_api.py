"""The library as an integrator types it (issue 21, point 7): the README's own program passes
`mypy --strict` without pydantic's mypy plugin, every name the README uses is exported from
`guidance_rules`, and no name a package binds hides one of its submodules."""

from __future__ import annotations

import ast
import doctest
import importlib
import inspect
import pkgutil
import re
import subprocess
import sys
import textwrap
from enum import StrEnum
from pathlib import Path
from typing import get_args

import pytest

import guidance_rules
from guidance_rules.model import case as case_module
from tests import readme
from tests.conftest import ROOT

# The modules whose public classes and functions an integrator may meet in the README.
LIBRARY_MODULES = (
    "guidance_rules.model.case",
    "guidance_rules.model.answer",
    "guidance_rules.errors",
    "guidance_rules.recommendation.recommender",
    "guidance_rules.recommendation.whatif",
    "guidance_rules.rulebase.load",
)


def _readme_program() -> str:
    """The README's Python blocks as one program (the `>>>` examples' source)."""
    parser = doctest.DocTestParser()
    blocks = [b for b in readme.blocks() if b.info == "python"]
    assert blocks, "the README shows no Python"
    return "".join(example.source for b in blocks for example in parser.get_examples("\n".join(b.lines)))


MISSPELT = (
    'from guidance_rules import Case\n\nCase(site="hip", injectate="cell-based")\nCase(injectate="prp", anatomy_variance="obesity")\n'
)


@pytest.fixture(scope="module")
def mypy_without_plugin(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    """mypy --strict with a config that names no plugin, run outside the checkout so the project's
    own configuration (which loads pydantic.mypy) is not read: once over two files, the README's
    program and a misspelt one (each analysis of the package from scratch takes tens of seconds);
    the lines it prints, by file."""
    pytest.importorskip("mypy")
    tmp_path = tmp_path_factory.mktemp("mypy")
    (tmp_path / "mypy.ini").write_text("[mypy]\nstrict = True\n")
    (tmp_path / "program.py").write_text(_readme_program())
    (tmp_path / "misspelt.py").write_text(MISSPELT)
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", "mypy.ini", "--cache-dir", str(tmp_path / "cache"), "program.py", "misspelt.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode in (0, 1) and not result.stderr, result.stdout + result.stderr  # 1: errors found; 2: mypy itself failed
    said: dict[str, list[str]] = {}
    for line in result.stdout.splitlines():
        file = line.split(":", 1)[0]
        said.setdefault(file if file.endswith(".py") else "", []).append(line)  # "" for the summary line
    return said


@pytest.mark.xdist_group("mypy-without-plugin")  # both read one mypy run
def test_the_readme_program_passes_mypy_strict_without_the_pydantic_plugin(mypy_without_plugin: dict[str, list[str]]) -> None:
    assert 'Case(site="hip", injectate="cell_based", anatomy_variance=["obesity"])' in _readme_program()
    # nothing said of any file but the misspelt one (an error in our own modules counts too)
    assert set(mypy_without_plugin) <= {"misspelt.py", ""}, mypy_without_plugin


@pytest.mark.xdist_group("mypy-without-plugin")
def test_mypy_without_the_plugin_still_rejects_a_misspelt_value(mypy_without_plugin: dict[str, list[str]]) -> None:
    """The check above reads our types: a value outside the contract is a type error."""
    errors = [line for line in mypy_without_plugin.get("misspelt.py", []) if "error:" in line]
    assert len(errors) == 2, mypy_without_plugin
    assert 'Argument "injectate" to "Case" has incompatible type "Literal[\'cell-based\']"' in "\n".join(errors)


CASE_ENUMS = [
    e for e in vars(case_module).values() if isinstance(e, type) and issubclass(e, StrEnum) and e.__module__ == case_module.__name__
]


@pytest.mark.parametrize("enum", [e for e in CASE_ENUMS if e.__name__ not in ("Modality", "Category")], ids=lambda e: e.__name__)
def test_each_literal_type_lists_exactly_its_enums_values(enum: type[StrEnum]) -> None:
    literal = getattr(case_module, f"{enum.__name__}Name")
    assert list(get_args(literal)) == [member.value for member in enum]


def test_every_case_field_of_the_typed_signature_is_a_field_of_the_model() -> None:
    """The signature type checkers see (Case.__init__ under TYPE_CHECKING) names every field."""
    tree = ast.parse(Path(case_module.__file__).read_text())
    init = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "__init__")
    assert [a.arg for a in init.args.kwonlyargs] == list(case_module.Case.model_fields)


def _library_names() -> dict[str, str]:
    names: dict[str, str] = {}
    for module_name in LIBRARY_MODULES:
        module = importlib.import_module(module_name)
        for name, value in vars(module).items():
            if not name.startswith("_") and (inspect.isclass(value) or inspect.isfunction(value)) and value.__module__ == module_name:
                names[name] = module_name
    return names


def test_every_library_name_the_readme_uses_is_exported() -> None:
    text = (ROOT / "README.md").read_text()
    program = ast.parse(_readme_program())
    imported = {
        a.name for node in ast.walk(program) if isinstance(node, ast.ImportFrom) and node.module == "guidance_rules" for a in node.names
    }
    mentioned = set(re.findall(r"`([A-Za-z_]\w*)(?:\(|`)", text))
    library = _library_names()
    used = imported | (mentioned & set(library))
    assert {"Case", "Injectate", "Variance", "what_if", "fold_case"} <= used
    missing = sorted(name for name in used if name not in guidance_rules.__all__)
    assert not missing, f"the README uses these, but guidance_rules does not export them: {missing}"
    for name in guidance_rules.__all__:
        assert getattr(guidance_rules, name) is not None


def _packages() -> list[str]:
    found = ["guidance_rules"]
    for info in pkgutil.walk_packages(guidance_rules.__path__, "guidance_rules."):
        if info.ispkg:
            found.append(info.name)
    return found


@pytest.mark.parametrize("package", _packages())
def test_no_name_a_package_binds_hides_a_submodule(package: str) -> None:
    """`guidance_rules.recommend` (a function) once hid the subpackage of the same name, so
    `import guidance_rules.recommend.whatif` imported and then `guidance_rules.recommend.whatif`
    failed. Read from each package's __init__: every name it binds (imports, definitions,
    assignments, and its __all__) must not be the name of one of its submodules."""
    module = importlib.import_module(package)
    submodules = {info.name for info in pkgutil.iter_modules(module.__path__)}
    tree = ast.parse(Path(str(module.__file__)).read_text())
    bound: set[str] = set(getattr(module, "__all__", ()))
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.ImportFrom):
            bound.update(a.asname or a.name for a in node.names)
        elif isinstance(node, ast.Assign):
            bound.update(t.id for t in node.targets if isinstance(t, ast.Name))
    hidden = sorted((bound & submodules) - _imported_as_modules(tree, package))
    assert not hidden, f"{package} binds {hidden}, the name of its own submodule(s): the submodule is hidden"


def _imported_as_modules(tree: ast.Module, package: str) -> set[str]:
    """Names bound by `from package import submodule`: the submodule itself, which hides nothing."""
    return {
        a.asname or a.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module == package for a in node.names
    }


def test_a_subpackage_is_reachable_by_its_dotted_name_after_import() -> None:
    """The issue's own steps, in a fresh interpreter."""
    script = textwrap.dedent(
        """
        import guidance_rules.recommendation.whatif
        import guidance_rules
        assert guidance_rules.recommendation.whatif.what_if is guidance_rules.what_if
        assert callable(guidance_rules.recommend)
        print("ok")
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stdout + result.stderr
