"""Installing on Python 3.11-3.13: the patched engine build (shipped in the package as
`python -m guidance_rules.engine.build`), the error when the engine cannot load, `python -m
guidance_rules`, and setup.sh skipping pip when nothing changed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from guidance_rules.engine import build as build_engine
from tests.conftest import ROOT


def test_patch_replaces_every_removed_call_and_refuses_other_sources(tmp_path: Path) -> None:
    source = tmp_path / "rules.c"
    calls = "\n".join(f"    result{i} = PyEval_CallObject(callback, arglist);" for i in range(build_engine.EXPECTED_CALLS))
    source.write_text(f"static void f(void) {{\n{calls}\n}}\n")
    assert build_engine.patch_source(source) == build_engine.EXPECTED_CALLS
    patched = source.read_text()
    assert "PyEval_CallObject" not in patched
    assert patched.count("PyObject_CallObject(callback, arglist)") == build_engine.EXPECTED_CALLS
    # a different release (here: one call fewer) is refused, not half-patched
    other = tmp_path / "other.c"
    other.write_text(calls.split("\n", 1)[1])
    with pytest.raises(build_engine.BuildError, match="expected"):
        build_engine.patch_source(other)
    assert "PyEval_CallObject" in other.read_text()


def test_installed_engine_is_the_patched_build() -> None:
    """setup.sh installs durable-rules from .wheels, not the release: no call of the removed function."""
    import durable_rules_engine

    binary = Path(durable_rules_engine.__file__).read_bytes()
    assert b"PyObject_CallObject" in binary
    assert b"PyEval_CallObject" not in binary  # 3.11/3.12 headers turn it into PyEval_CallObjectWithKeywords


def _broken_engine(tmp_path: Path) -> dict[str, str]:
    """An environment whose durable_rules_engine fails to import the way 2.0.28 does on 3.13."""
    (tmp_path / "durable_rules_engine.py").write_text(
        'raise ImportError("durable_rules_engine.cpython-313-x86_64-linux-gnu.so: undefined symbol: PyEval_CallObject")\n'
    )
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}


def test_engine_that_cannot_load_says_why_and_what_to_run(tmp_path: Path) -> None:
    program = (
        "import guidance_rules\n"  # importing still works; the error comes on first use
        "try:\n"
        "    guidance_rules.recommend({'site': 'knee', 'injectate': 'prp'})\n"
        "except guidance_rules.EngineUnavailableError as error:\n"
        "    print(error)\n"
    )
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, cwd=tmp_path, env=_broken_engine(tmp_path))
    assert result.returncode == 0, result.stderr
    message = result.stdout
    assert "undefined symbol: PyEval_CallObject" in message  # why
    assert f"`{sys.executable} {build_engine.COMMAND}`" in message  # what to run, with this interpreter: no checkout needed
    assert "scripts/" not in message


def test_cli_with_an_engine_that_cannot_load_exits_1_without_traceback(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "guidance_rules", "examples"], capture_output=True, text=True, cwd=tmp_path, env=_broken_engine(tmp_path)
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert build_engine.COMMAND in result.stderr


def test_the_builder_runs_from_the_package_and_from_the_checkouts_script(tmp_path: Path) -> None:
    """Both print the directory holding the wheel for this interpreter; the package's default is the
    user's cache, the checkout's .wheels/ (setup.sh). A wheel already there is reused, not rebuilt."""
    wheels = ROOT / ".wheels"
    assert build_engine.existing_wheel(wheels / build_engine.abi_key()), "setup.sh builds this wheel first"
    env = {k: v for k, v in os.environ.items() if k != "GUIDANCE_RULES_WHEELS"} | {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    run = {"capture_output": True, "text": True, "env": env, "timeout": 900}
    script = subprocess.run([sys.executable, str(ROOT / "scripts" / "build_engine.py")], **run)
    assert script.returncode == 0, script.stderr
    assert script.stdout.strip() == str(wheels / build_engine.abi_key())
    module = subprocess.run([sys.executable, "-m", "guidance_rules.engine.build", "--wheels", str(wheels)], cwd=tmp_path, **run)
    assert module.returncode == 0 and module.stdout == script.stdout, module.stderr
    assert build_engine.default_wheels() != wheels
    help_text = subprocess.run([sys.executable, "-m", "guidance_rules.engine.build", "--help"], **run)
    assert str(tmp_path / "cache" / "guidance-rules" / "wheels") in "".join(help_text.stdout.split()) and "--install" in help_text.stdout


def test_python_dash_m_runs_the_cli(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "guidance_rules", "--version"], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("guidance-rules ")


def test_setup_runs_pip_only_when_something_changed(tmp_path: Path) -> None:
    """A stand-in venv whose python logs pip calls instead of running them."""
    venv, log = tmp_path / "venv", tmp_path / "calls.log"
    (venv / "bin").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text(f"version = {sys.version.split()[0]}\n")
    python = venv / "bin" / "python"
    python.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> "{log}"\n'
        'case "$1" in\n'
        "  -m) exit 0 ;;\n"  # pip: record only
        f"  scripts/build_engine.py) echo {tmp_path}; exit 0 ;;\n"
        "esac\n"
        f'exec "{sys.executable}" "$@"\n'
    )
    python.chmod(0o755)

    def setup(*extras: str) -> int:
        """Run setup.sh; return how many pip calls it made."""
        before = log.read_text().count("-m pip") if log.exists() else 0
        env = {**os.environ, "PYTHON": sys.executable, "VENV": str(venv)}
        result = subprocess.run(["sh", str(ROOT / "scripts" / "setup.sh"), *extras], capture_output=True, text=True, env=env)
        assert result.returncode == 0, result.stderr
        return log.read_text().count("-m pip") - before

    assert setup() > 0  # first run installs
    assert "-e ." in log.read_text()
    assert setup() == 0  # nothing changed: no pip at all
    assert setup("dev") > 0  # extras not installed yet
    assert "-e .[dev]" in log.read_text()
    assert setup("dev") == 0
    assert setup() == 0  # the dev install includes the plain one
    (venv / "pyvenv.cfg").write_text((venv / "pyvenv.cfg").read_text() + "home = /elsewhere\n")  # interpreter changed
    assert setup() > 0
    assert setup("dev") > 0  # its stamp is stale too
    assert setup("dev") == 0
