"""The wheel carries the rule base, the examples and py.typed: an installed copy works from any
directory, on whichever Python runs this test (CI runs it on 3.11, 3.12 and 3.13, one venv each).

The engine comes from the wheel scripts/build_engine.py builds for this interpreter (the release
of durable-rules does not build on 3.13), installed the way the README tells an integrator to.
"""

from __future__ import annotations

import subprocess
import sys
import venv
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ROOT


@dataclass(frozen=True)
class Installed:
    wheel: Path
    python: Path
    scripts: Path
    elsewhere: Path  # a directory outside the checkout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """Our wheel, installed with its dependencies into a fresh venv of this interpreter."""
    tmp_path = tmp_path_factory.mktemp("packaging")
    dist = tmp_path / "dist"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(ROOT)], capture_output=True, text=True, timeout=600
    )
    assert build.returncode == 0, build.stderr[-3000:]
    (wheel,) = dist.glob("guidance_rules-*.whl")
    engine = subprocess.run([sys.executable, str(ROOT / "scripts" / "build_engine.py")], capture_output=True, text=True, timeout=900)
    assert engine.returncode == 0, engine.stderr[-3000:]
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "--find-links", engine.stdout.strip(),
         "--only-binary", "durable-rules", str(wheel)],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr[-3000:]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    return Installed(wheel, python, env_dir / "bin", elsewhere)


def test_wheel_installs_and_runs_examples_anywhere(installed: Installed) -> None:
    for command in ([str(installed.scripts / "guidance-rules"), "examples"], [str(installed.python), "-m", "guidance_rules", "examples"]):
        result = subprocess.run(command, capture_output=True, text=True, cwd=installed.elsewhere, timeout=300)
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
        assert "examples agree with their expected modality" in result.stdout
    shipped = subprocess.run(
        [str(installed.python), "-c", "import guidance_rules.rulebase.load as k; print(k.default_rules_dir())"],
        capture_output=True,
        text=True,
        cwd=installed.elsewhere,
        timeout=120,
    )
    assert "site-packages/guidance_rules/rules" in shipped.stdout  # the packaged copy, not a checkout


def test_client_code_is_type_checked_against_the_installed_wheel(installed: Installed) -> None:
    """py.typed is shipped, so mypy on an integrator's code reads our hints (else: import-untyped)."""
    assert "guidance_rules/py.typed" in zipfile.ZipFile(installed.wheel).namelist()
    pytest.importorskip("mypy")
    client = installed.elsewhere / "client.py"
    client.write_text(
        "from guidance_rules import Modality, recommend\n\n"
        'modality: Modality = recommend({"site": "knee", "injectate": "prp"}).modality\n'
        "wrong: int = modality\n"  # an error mypy can only report if it reads our types
    )
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--python-executable", str(installed.python), str(client)],
        capture_output=True, text=True, cwd=installed.elsewhere, timeout=300,
    )  # fmt: skip
    assert "import-untyped" not in result.stdout, result.stdout
    assert 'Incompatible types in assignment (expression has type "Modality", variable has type "int")' in result.stdout, result.stdout
    assert "client.py:4:" in result.stdout and result.stdout.count("error:") == 1, result.stdout


def test_wheel_carries_the_clinicians_page(installed: Installed) -> None:
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    for asset in ("page.html", "page.css", "page.js"):
        assert f"guidance_rules/service/static/{asset}" in names, f"{asset} is missing from the wheel"


def test_the_engine_builder_ships_in_the_wheel_and_runs_without_a_checkout(installed: Installed) -> None:
    """Issue 21, point 9: an integrator builds and installs the engine with the package alone
    (`python -m guidance_rules.engine.build --install`, the command the first-use error names),
    or, before the package's dependencies are installed, runs the builder file from the wheel.
    The checkout's wheel folder is passed only so the test reuses the wheel setup built."""
    assert "guidance_rules/engine/build.py" in zipfile.ZipFile(installed.wheel).namelist()
    wheels = str(ROOT / ".wheels")
    module = subprocess.run(
        [str(installed.python), "-m", "guidance_rules.engine.build", "--wheels", wheels, "--install"],
        capture_output=True, text=True, cwd=installed.elsewhere, timeout=600,
    )  # fmt: skip
    assert module.returncode == 0, module.stderr
    assert "installed durable_rules-2.0.28-" in module.stderr
    check = "import durable_rules_engine as d; print(b'PyEval_CallObject' in open(d.__file__, 'rb').read())"
    engine = subprocess.run([str(installed.python), "-c", check], capture_output=True, text=True, cwd=installed.elsewhere, timeout=60)
    assert engine.stdout.strip() == "False", engine.stderr  # the patched build
    unpacked = installed.elsewhere / "unpacked"
    subprocess.run([sys.executable, "-m", "zipfile", "-e", str(installed.wheel), str(unpacked)], check=True, timeout=120)
    plain = subprocess.run(
        [sys.executable, "-I", "-S", str(unpacked / "guidance_rules" / "engine" / "build.py"), "--wheels", wheels],  # stdlib only
        capture_output=True, text=True, cwd=installed.elsewhere, timeout=600,
    )  # fmt: skip
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout.strip() == module.stdout.strip()
