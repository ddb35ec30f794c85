#!/bin/sh
# Set everything up, then run every example case and compare with its expected modality.
# PYTHON and VENV choose the interpreter and environment (see scripts/setup.sh).
set -eu
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
sh scripts/setup.sh
exec "$VENV/bin/guidance-rules" examples
