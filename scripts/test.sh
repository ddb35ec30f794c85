#!/bin/sh
# Set everything up, then run the whole suite: lint, types, tests (with the CI hypothesis
# profile), and the rule-coverage audit over the whole case space.
set -eu
cd "$(dirname "$0")/.."
sh scripts/setup.sh dev
echo "== ruff"; .venv/bin/ruff check guidance_rules tests benchmarks
echo "== mypy --strict"; .venv/bin/mypy guidance_rules
echo "== pytest"; HYPOTHESIS_PROFILE=ci .venv/bin/python -m pytest -q
echo "== audit"; .venv/bin/guidance-rules audit --html audit-report.html
