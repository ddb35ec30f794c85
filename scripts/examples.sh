#!/bin/sh
# Set everything up, then run every example case and compare with its expected modality.
set -eu
cd "$(dirname "$0")/.."
sh scripts/setup.sh
exec .venv/bin/guidance-rules examples
