#!/bin/sh
# Create the virtual environment if missing and install the package (editable) with the given
# extras; skip pip entirely when nothing it depends on changed since the last run.
# Usage: sh scripts/setup.sh [EXTRAS]               e.g. sh scripts/setup.sh dev
# Environment: PYTHON  interpreter to build the environment with (default python3)
#              VENV    environment directory (default .venv), e.g. PYTHON=python3.13 VENV=.venv-3.13
# The durable-rules engine is installed from a wheel that scripts/build_engine.py builds once per
# Python ABI into .wheels/ (durable-rules 2.0.28 does not build on Python 3.13 as released).
set -eu
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
VENV="${VENV:-.venv}"
version='import sys; print("%d.%d" % sys.version_info[:2])'

wanted=$("$PYTHON" -c "$version") || { echo "setup: cannot run PYTHON=$PYTHON (Python >= 3.11 needed)" >&2; exit 1; }
if [ -x "$VENV/bin/python" ]; then
    have=$("$VENV/bin/python" -c "$version" 2>/dev/null || echo broken)
    if [ "$have" != "$wanted" ]; then
        echo "setup: $VENV is Python $have but $PYTHON is $wanted: recreating $VENV" >&2
        rm -rf "$VENV"
    fi
fi
if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi

# What the installed environment depends on: the project metadata and the interpreter. One stamp
# per extras; an install with any extras also satisfies a plain one.
# Bytecode for the package, also where PYTHONDONTWRITEBYTECODE is set (an editable install is
# otherwise compiled from source on every start: about 20 ms of the command line's start-up).
"$VENV/bin/python" -m compileall -q guidance_rules >/dev/null 2>&1 || true
state=$(cksum pyproject.toml guidance_rules/_version.py; cat "$VENV/pyvenv.cfg")
stamp="$VENV/.guidance-rules-setup-${1:-base}"
for done in "$stamp" "$VENV"/.guidance-rules-setup-*; do
    [ "$done" = "$stamp" ] || [ -z "${1:-}" ] || continue
    if [ -f "$done" ] && [ "$(cat "$done")" = "$state" ]; then
        exit 0
    fi
done
rm -f "$stamp"

wheels=$("$VENV/bin/python" scripts/build_engine.py)
spec="."
[ -n "${1:-}" ] && spec=".[$1]"
pip() { "$VENV/bin/python" -m pip --quiet --disable-pip-version-check "$@"; }
pip install --upgrade pip >/dev/null
pip install --find-links "$wheels" --only-binary durable-rules -e "$spec"
# An environment made before the engine came from .wheels keeps durable-rules as released (pip
# sees 2.0.28 installed and keeps it); replace it unless it is the build without the removed call.
patched='import durable_rules_engine as d, sys; sys.exit(b"PyEval_CallObject" in open(d.__file__, "rb").read())'
if ! "$VENV/bin/python" -c "$patched" 2>/dev/null; then
    pip install --force-reinstall --no-deps "$wheels"/durable_rules-*.whl
    "$VENV/bin/python" -c "$patched"
fi
printf '%s\n' "$state" >"$stamp"
