"""The engine wheel builder's own logic, with pip and the compiler replaced by stand-ins (the real
build is tests/test_install.py's): where wheels go, when one is reused or rebuilt, every refusal
(missing archive, wrong checksum, failed build) and what the command prints and returns."""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

from guidance_rules.engine import build as builder

SOURCE = "\n".join(f"x{i} = PyEval_CallObject(f, a);" for i in range(builder.EXPECTED_CALLS))


def archive(source: str = SOURCE) -> bytes:
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w:gz") as tar:
        body = source.encode()
        info = tarfile.TarInfo(f"durable_rules-{builder.VERSION}/{builder.PATCHED_FILE}")
        info.size = len(body)
        tar.addfile(info, io.BytesIO(body))
    return data.getvalue()


class FakePip:
    """pip download writes `payload` as the archive; pip wheel records what it was given and
    writes a wheel (or fails with `wheel_exit`)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, payload: bytes | None, wheel_exit: int = 0) -> None:
        self.payload, self.wheel_exit = payload, wheel_exit
        self.calls: list[tuple[str, ...]] = []
        self.built_from: str = ""
        self.env: dict[str, str] = {}
        monkeypatch.setattr(builder, "_pip", self.pip)
        monkeypatch.setattr(builder.subprocess, "run", self.run)

    def pip(self, *args: str, cwd: Path) -> None:
        self.calls.append(args)
        if args[0] == "download" and self.payload is not None:
            Path(args[args.index("--dest") + 1], builder.SDIST).write_bytes(self.payload)

    def run(self, command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        tree = Path(command[-1])
        self.built_from = (tree / builder.PATCHED_FILE).read_text()
        self.env = kwargs["env"]
        staging = Path(command[command.index("--wheel-dir") + 1])
        staging.mkdir(parents=True, exist_ok=True)
        (staging / f"durable_rules-{builder.VERSION}-cp3-abi-plat.whl").write_bytes(b"wheel")
        return subprocess.CompletedProcess(
            command, self.wheel_exit, "out" if self.wheel_exit else "", "compiler said no" if self.wheel_exit else ""
        )


@pytest.fixture
def genuine(monkeypatch: pytest.MonkeyPatch) -> bytes:
    """An archive the builder takes for the release (its checksum is the expected one)."""
    payload = archive()
    monkeypatch.setattr(builder, "SDIST_SHA256", hashlib.sha256(payload).hexdigest())
    return payload


def test_a_build_patches_the_source_and_installs_the_wheel_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, genuine: bytes) -> None:
    monkeypatch.setenv("CPPFLAGS", "-O2")
    pip = FakePip(monkeypatch, genuine)
    target = builder.build(tmp_path / "wheels")
    assert target == tmp_path / "wheels" / builder.abi_key()
    assert [p.name for p in target.iterdir()] == [f"durable_rules-{builder.VERSION}-cp3-abi-plat.whl"]
    assert pip.calls[0][:5] == ("download", "--quiet", "--no-deps", "--no-binary", ":all:")
    assert pip.calls[0][-1] == f"durable-rules=={builder.VERSION}"
    assert pip.built_from.count("PyObject_CallObject(") == builder.EXPECTED_CALLS and "PyEval_CallObject" not in pip.built_from
    assert pip.env["CPPFLAGS"] == "-O2 -Werror=implicit-function-declaration"


def test_a_built_wheel_is_reused_unless_forced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, genuine: bytes) -> None:
    target = tmp_path / "wheels" / builder.abi_key()
    target.mkdir(parents=True)
    old = target / f"durable_rules-{builder.VERSION}-old.whl"
    old.write_bytes(b"old")
    pip = FakePip(monkeypatch, genuine)
    assert builder.build(tmp_path / "wheels") == target and pip.calls == []
    monkeypatch.delenv("CPPFLAGS", raising=False)
    builder.build(tmp_path / "wheels", force=True)
    assert not old.exists() and len(list(target.glob("*.whl"))) == 1
    assert pip.env["CPPFLAGS"] == "-Werror=implicit-function-declaration"


def test_a_missing_archive_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    FakePip(monkeypatch, None)
    with pytest.raises(builder.BuildError) as caught:
        builder.build(tmp_path)
    assert str(caught.value) == f"pip did not download {builder.SDIST} (got [])"


def test_an_archive_with_another_checksum_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    payload = archive()
    FakePip(monkeypatch, payload)
    with pytest.raises(builder.BuildError) as caught:
        builder.build(tmp_path)
    digest = hashlib.sha256(payload).hexdigest()
    assert str(caught.value) == f"{builder.SDIST} has SHA-256 {digest}, expected {builder.SDIST_SHA256}: refusing to build it"


def test_a_failed_compile_is_refused_with_its_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, genuine: bytes) -> None:
    FakePip(monkeypatch, genuine, wheel_exit=1)
    with pytest.raises(builder.BuildError) as caught:
        builder.build(tmp_path)
    assert str(caught.value) == f"building the patched {builder.NAME} {builder.VERSION} failed:\noutcompiler said no"
    assert not list((tmp_path / builder.abi_key()).glob("*.whl"))


def test_a_source_with_another_count_of_calls_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "rules.c"
    source.write_text(SOURCE + "\ny = PyEval_CallObject(g, b);")
    with pytest.raises(builder.BuildError) as caught:
        builder.patch_source(source)
    assert str(caught.value) == f"{source} calls PyEval_CallObject 6 times, expected 5: not the 2.0.28 source this fix is for"
    assert "PyObject_CallObject" not in source.read_text()


def test_pip_failures_say_what_ran_and_what_it_said(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    seen: list[Any] = []

    def run(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        seen.append((command, kwargs))
        return subprocess.CompletedProcess(command, 3 if "bad" in command else 0, "x" * 4000, "err")

    monkeypatch.setattr(builder.subprocess, "run", run)
    builder._pip("good", cwd=tmp_path)
    assert seen[0][0] == [sys.executable, "-m", "pip", "--disable-pip-version-check", "good"]
    assert seen[0][1] == {"cwd": tmp_path, "capture_output": True, "text": True}
    with pytest.raises(builder.BuildError) as caught:
        builder._pip("bad", cwd=tmp_path)
    assert str(caught.value) == f"`{sys.executable} -m pip --disable-pip-version-check bad` failed (exit 3):\n{'x' * 3000}err"


def test_install_needs_a_built_wheel_and_installs_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[tuple[str, ...], Path]] = []
    monkeypatch.setattr(builder, "_pip", lambda *args, cwd: calls.append((args, cwd)))
    with pytest.raises(builder.BuildError) as caught:
        builder.install(tmp_path)
    assert str(caught.value) == f"no durable-rules {builder.VERSION} wheel in {tmp_path}"
    (tmp_path / f"durable_rules-{builder.VERSION}-b.whl").write_bytes(b"")
    (tmp_path / f"durable_rules-{builder.VERSION}-a.whl").write_bytes(b"")
    (tmp_path / "durable_rules-2.0.27-a.whl").write_bytes(b"")
    wheel = builder.install(tmp_path)
    assert wheel == tmp_path / f"durable_rules-{builder.VERSION}-a.whl"
    assert calls == [(("install", "--quiet", "--force-reinstall", "--no-deps", str(wheel)), tmp_path)]
    assert builder.existing_wheel(tmp_path / "none") is None


def test_wheels_go_where_the_environment_says(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("GUIDANCE_RULES_WHEELS", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert builder.default_wheels() == tmp_path / ".cache" / "guidance-rules" / "wheels"
    monkeypatch.setenv("XDG_CACHE_HOME", "/xdg")
    assert builder.default_wheels() == Path("/xdg/guidance-rules/wheels")
    monkeypatch.setenv("GUIDANCE_RULES_WHEELS", "/chosen")
    assert builder.default_wheels() == Path("/chosen")


def test_the_wheel_folder_is_named_for_the_interpreters_abi(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(builder.sysconfig, "get_config_var", lambda name: "cpython-399-plat" if name == "SOABI" else None)
    assert builder.abi_key() == "cpython-399-plat"
    monkeypatch.setattr(builder.sysconfig, "get_config_var", lambda name: None)
    assert builder.abi_key() == f"{sys.implementation.name}-{sys.version_info[0]}{sys.version_info[1]}"


def test_the_command_prints_the_wheel_folder_or_the_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("GUIDANCE_RULES_WHEELS", raising=False)
    built: list[tuple[Path, bool]] = []
    installed: list[Path] = []

    def build(wheels: Path, force: bool = False) -> Path:
        built.append((wheels, force))
        return wheels / "abi"

    def install(directory: Path) -> Path:
        installed.append(directory)
        return directory / "durable_rules.whl"

    monkeypatch.setattr(builder, "build", build)
    monkeypatch.setattr(builder, "install", install)
    assert builder.main([], wheels=tmp_path) == 0
    assert capsys.readouterr().out == f"{tmp_path / 'abi'}\n" and built == [(tmp_path, False)] and installed == []
    assert builder.main(["--force", "--install", "--wheels", str(tmp_path / "w")]) == 0
    out = capsys.readouterr()
    assert built[-1] == (tmp_path / "w", True) and installed == [tmp_path / "w" / "abi"]
    assert out.err == f"installed durable_rules.whl into {sys.prefix}\n" and out.out == f"{tmp_path / 'w' / 'abi'}\n"
    monkeypatch.setenv("GUIDANCE_RULES_WHEELS", str(tmp_path / "env"))
    builder.main([], wheels=tmp_path)
    assert built[-1] == (tmp_path / "env", False)  # the environment's choice wins over the caller's default
    capsys.readouterr()

    def failing(wheels: Path, force: bool = False) -> Path:
        raise builder.BuildError("no compiler")

    monkeypatch.setattr(builder, "build", failing)
    assert builder.main([]) == 1
    out = capsys.readouterr()
    assert (out.out, out.err) == ("", "engine build: no compiler\n")
