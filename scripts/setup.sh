#!/bin/sh
# Create .venv if missing and install the package (editable) with the given extras.
# Usage: sh scripts/setup.sh [EXTRAS]     e.g. sh scripts/setup.sh dev
set -eu
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
spec="."
[ -n "${1:-}" ] && spec=".[$1]"
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip >/dev/null
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e "$spec"
