"""Which mutant an EQUIVALENT entry of scripts/mutate.py names now, after its file changed.

Usage: .venv/bin/python scripts/mutants_moved.py REV [FILE ...]
    REV    the revision the EQUIVALENT names were made against (e.g. main, HEAD~3)
    FILE   core-layer files to check (default: those changed since REV)

mutmut numbers a function's mutants in source order, so a line added to a function renumbers every
mutant after it, and an EQUIVALENT entry can silently come to name another mutant (and hide a real
survivor). This generates the mutants of each file at REV and now, identifies each by the function
and the lines it changes (and, among alike changes, its order), and prints every listed name that
now names another mutant or none. Exit 1 if any did.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import libcst as cst

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from mutate import EQUIVALENT  # noqa: E402

Key = tuple[str, tuple[str, ...], int]  # function, the lines the mutant changes, which of alike changes


def _functions(source: str) -> dict[str, str]:
    """Every generated function of mutmut's output, methods included, by name."""
    module = cst.parse_module(source)
    found: dict[str, str] = {}
    for node in module.body:
        nodes = node.body.body if isinstance(node, cst.ClassDef) else [node]
        for sub in nodes:
            if isinstance(sub, cst.FunctionDef):
                found[sub.name.value] = module.code_for_node(sub)
    return found


def mutant_keys(path: str, code: str) -> dict[str, Key]:
    """Each mutant of `code` by short name (x_f__mutmut_3) with what identifies it across versions."""
    from mutmut.mutation.file_mutation import mutate_file_contents  # needs mutmut's configuration (cwd)

    functions = _functions(mutate_file_contents(path, code).code)
    keys: dict[str, Key] = {}
    seen: dict[tuple[str, tuple[str, ...]], int] = defaultdict(int)
    for name, text in functions.items():
        match = re.fullmatch(r"(.*)__mutmut_(\d+)", name)
        original = functions.get(f"{match.group(1)}__mutmut_orig") if match else None
        if match is None or original is None:
            continue
        base = match.group(1)
        before = original.replace(f"{base}__mutmut_orig", "F").splitlines()
        after = text.replace(name, "F").splitlines()
        change = tuple(
            line for line in difflib.unified_diff(before, after, lineterm="", n=0) if line[:1] in "+-" and line[:3] not in ("+++", "---")
        )
        seen[base, change] += 1
        keys[name] = (base, change, seen[base, change])
    return keys


def moved(rev: str, path: str) -> list[tuple[str, str | None]]:
    """(listed name, the name of that mutant now or None) for each EQUIVALENT name of `path` that moved."""
    module = path.removesuffix(".py").replace("/", ".")
    listed = [name for name in EQUIVALENT if name.startswith(module + ".")]
    if not listed:
        return []
    old = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    new = (ROOT / path).read_text()
    here = os.getcwd()
    with tempfile.TemporaryDirectory() as work:  # mutmut reads its configuration from the working directory
        Path(work, "setup.cfg").write_text("[mutmut]\nsource_paths=guidance_rules\n")
        Path(work, "guidance_rules").mkdir()
        os.chdir(work)
        try:
            before, after = mutant_keys(path, old), mutant_keys(path, new)
        finally:
            os.chdir(here)
    now = {key: name for name, key in after.items()}
    out: list[tuple[str, str | None]] = []
    for full in listed:
        short = full.removeprefix(module + ".")
        target = now.get(before[short]) if short in before else None
        if target != short:
            out.append((full, f"{module}.{target}" if target else None))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("rev")
    parser.add_argument("files", nargs="*")
    args = parser.parse_args()
    files = (
        args.files
        or subprocess.run(
            ["git", "diff", "--name-only", args.rev, "--", "guidance_rules"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.split()
    )
    changes = [change for path in files if path.endswith(".py") for change in moved(args.rev, path)]
    for old, new in changes:
        print(f"{old} -> {new or 'no such mutant now: re-check it or drop it'}")
    return 1 if changes else 0


if __name__ == "__main__":
    sys.exit(main())
