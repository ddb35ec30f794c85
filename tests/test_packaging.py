"""The wheel carries the rule base and examples: an installed copy works from any directory."""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

from tests.conftest import ROOT


def test_wheel_installs_and_runs_examples_anywhere(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(ROOT)], capture_output=True, text=True, timeout=600
    )
    assert build.returncode == 0, build.stderr[-3000:]
    (wheel,) = dist.glob("guidance_rules-*.whl")
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(wheel)], capture_output=True, text=True, timeout=900
    )
    assert install.returncode == 0, install.stderr[-3000:]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = subprocess.run(
        [str(env_dir / "bin" / "guidance-rules"), "examples"], capture_output=True, text=True, cwd=elsewhere, timeout=300
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "examples agree with their expected modality" in result.stdout
    shipped = subprocess.run(
        [str(python), "-c", "import guidance_rules.rulebase.load as k; print(k.default_rules_dir())"],
        capture_output=True,
        text=True,
        cwd=elsewhere,
        timeout=120,
    )
    assert "site-packages/guidance_rules/rules" in shipped.stdout  # the packaged copy, not a checkout
