"""Build the durable-rules engine wheel for the running Python, with its one Python 3.13 fix.

durable-rules 2.0.28 (its last release, a source archive only) calls `PyEval_CallObject`,
which Python 3.13 removed: on 3.13 the extension fails to import ("undefined symbol"), and
GCC 14 or clang 16 refuse to compile it. Upstream replaced the call with `PyObject_CallObject`
(same arguments, same semantics, in the C API since Python 3.0) but never released it.

This module downloads the release archive from the package index through pip, checks its
SHA-256, makes that one textual substitution, and builds a wheel into `WHEELS/<SOABI>/` (one
directory per interpreter ABI); `--install` then installs it into the running environment.
Nothing of durable-rules' source is kept in this package. The same patched build is used on
every Python version, so every version runs the same engine. It ships in the package, so an
integrator needs no checkout:

    python -m guidance_rules.engine.build --install    # build, install; prints the wheel directory
    python -m guidance_rules.engine.build              # build only (into ~/.cache/guidance-rules/wheels)

Stdlib only and importing nothing of guidance_rules, so it also runs as a plain file before the
package's dependencies are installed (from the wheel: `python -m zipfile -e guidance_rules-*.whl
DIR`, then `python DIR/guidance_rules/engine/build.py --install`), and scripts/build_engine.py runs
it for setup.sh. A wheel already in the directory is reused (`--force` rebuilds).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
from pathlib import Path

NAME, VERSION = "durable-rules", "2.0.28"
SDIST = f"durable_rules-{VERSION}.tar.gz"
SDIST_SHA256 = "053b26f5e48d312d4fa27995243f954671be6eece477f150c059c364eb4d7d61"
PATCHED_FILE = "src/rulespy/rules.c"
REMOVED, REPLACEMENT = "PyEval_CallObject(", "PyObject_CallObject("
EXPECTED_CALLS = 5  # in 2.0.28; any other count means the archive is not the one this fix was made for
COMMAND = "-m guidance_rules.engine.build --install"  # what the first-use error tells a user to run


def default_wheels() -> Path:
    """$GUIDANCE_RULES_WHEELS, else the user's cache folder (a checkout's setup uses .wheels/)."""
    if os.environ.get("GUIDANCE_RULES_WHEELS"):
        return Path(os.environ["GUIDANCE_RULES_WHEELS"])
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "guidance-rules" / "wheels"


class BuildError(Exception):
    """The engine wheel could not be built; the message says which step failed and why."""


def abi_key() -> str:
    """The wheel directory for this interpreter: its ABI (e.g. cpython-313-x86_64-linux-gnu)."""
    soabi = sysconfig.get_config_var("SOABI")
    return str(soabi) if soabi else f"{sys.implementation.name}-{sys.version_info[0]}{sys.version_info[1]}"


def existing_wheel(directory: Path) -> Path | None:
    """A durable-rules wheel already built into `directory`, if any."""
    found = sorted(directory.glob(f"durable_rules-{VERSION}-*.whl"))
    return found[0] if found else None


def _pip(*args: str, cwd: Path) -> None:
    command = [sys.executable, "-m", "pip", "--disable-pip-version-check", *args]
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise BuildError(f"`{' '.join(command)}` failed (exit {result.returncode}):\n{result.stdout[-3000:]}{result.stderr[-3000:]}")


def patch_source(source: Path) -> int:
    """Replace every call of the removed function; return how many were replaced."""
    text = source.read_text(encoding="utf-8")
    count = text.count(REMOVED)
    if count != EXPECTED_CALLS:
        raise BuildError(f"{source} calls {REMOVED[:-1]} {count} times, expected {EXPECTED_CALLS}: not the 2.0.28 source this fix is for")
    source.write_text(text.replace(REMOVED, REPLACEMENT), encoding="utf-8")
    return count


def build(wheels: Path, force: bool = False) -> Path:
    """Build (or reuse) the patched wheel for this interpreter; return its directory."""
    target = wheels / abi_key()
    if not force and existing_wheel(target):
        return target
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="durable-build-") as tmp_name:
        tmp = Path(tmp_name)
        _pip("download", "--quiet", "--no-deps", "--no-binary", ":all:", "--dest", str(tmp), f"{NAME}=={VERSION}", cwd=tmp)
        archive = tmp / SDIST
        if not archive.is_file():
            raise BuildError(f"pip did not download {SDIST} (got {sorted(p.name for p in tmp.iterdir())})")
        digest = hashlib.sha256(archive.read_bytes()).hexdigest()
        if digest != SDIST_SHA256:
            raise BuildError(f"{SDIST} has SHA-256 {digest}, expected {SDIST_SHA256}: refusing to build it")
        with tarfile.open(archive) as tar:
            if sys.version_info >= (3, 12):
                tar.extractall(tmp, filter="data")
            else:
                for member in tar.getmembers():  # the 3.11 equivalent of filter="data": no links, no escapes
                    if not (member.isfile() or member.isdir()) or member.name.startswith("/") or ".." in Path(member.name).parts:
                        raise BuildError(f"{SDIST} holds an unexpected entry {member.name!r}")
                tar.extractall(tmp)  # every member checked above
        tree = tmp / f"durable_rules-{VERSION}"
        patch_source(tree / PATCHED_FILE)
        env = dict(os.environ)
        if sys.platform != "win32":
            # GCC 14 and clang 16 make this an error by default; make it one everywhere, so a
            # call the fix missed fails here rather than as an undefined symbol at import.
            env["CPPFLAGS"] = (env.get("CPPFLAGS", "") + " -Werror=implicit-function-declaration").strip()
        staging = tmp / "wheel"
        command = [sys.executable, "-m", "pip", "--disable-pip-version-check", "wheel", "--quiet", "--no-deps", "--no-cache-dir"]
        result = subprocess.run([*command, "--wheel-dir", str(staging), str(tree)], capture_output=True, text=True, env=env)
        if result.returncode != 0:
            raise BuildError(f"building the patched {NAME} {VERSION} failed:\n{result.stdout[-3000:]}{result.stderr[-3000:]}")
        (wheel,) = staging.glob("*.whl")
        for old in target.glob(f"durable_rules-{VERSION}-*.whl"):
            old.unlink()
        partial = target / (wheel.name + ".partial")
        shutil.copyfile(wheel, partial)
        os.replace(partial, target / wheel.name)  # whole file or nothing: a reader never sees half a wheel
    return target


def install(directory: Path) -> Path:
    """Install the wheel built into `directory` into the running environment, replacing any
    durable-rules already there (the release that does not load on 3.13, say)."""
    wheel = existing_wheel(directory)
    if wheel is None:
        raise BuildError(f"no durable-rules {VERSION} wheel in {directory}")
    _pip("install", "--quiet", "--force-reinstall", "--no-deps", str(wheel), cwd=directory)
    return wheel


def main(argv: list[str] | None = None, wheels: Path | None = None) -> int:
    """Build (and with --install, install); print the wheel directory on standard output."""
    parser = argparse.ArgumentParser(prog="python -m guidance_rules.engine.build", description=__doc__.split("\n\n")[0])
    default = wheels if wheels is not None and not os.environ.get("GUIDANCE_RULES_WHEELS") else default_wheels()
    parser.add_argument("--wheels", type=Path, default=default, help=f"wheel cache root (default {default})")
    parser.add_argument("--force", action="store_true", help="rebuild even if a wheel is already there")
    parser.add_argument("--install", action="store_true", help=f"install the wheel into this environment ({sys.executable})")
    args = parser.parse_args(argv)
    try:
        directory = build(args.wheels.resolve(), force=args.force)
        if args.install:
            wheel = install(directory)
            print(f"installed {wheel.name} into {sys.prefix}", file=sys.stderr)
    except BuildError as error:
        print(f"engine build: {error}", file=sys.stderr)
        return 1
    print(directory)
    return 0


if __name__ == "__main__":
    sys.exit(main())
