#!/bin/sh
# Set everything up, then run the whole suite: lint, types, tests (with the CI hypothesis
# profile and branch coverage, each layer held to its floor), and the rule-coverage audit over
# the whole case space.
# PYTHON and VENV choose the interpreter and environment (see scripts/setup.sh).
set -eu
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
sh scripts/setup.sh dev,spark,dask,ray  # the engines too: the frames adapters are tested on Dask, Spark and Ray
echo "== ruff"; "$VENV/bin/ruff" check guidance_rules tests benchmarks scripts
echo "== ruff format --check"; "$VENV/bin/ruff" format --check guidance_rules tests benchmarks scripts
echo "== mypy --strict"; "$VENV/bin/mypy" guidance_rules scripts/build_engine.py
echo "== pytest (with branch coverage)"; HYPOTHESIS_PROFILE=ci "$VENV/bin/python" -m pytest -q -n auto --cov --cov-report= \
    --ignore=tests/frames/test_engines.py
# The warehouse engines over 100,000 rows each (Spark, Dask, Ray, batch and one-by-one answers):
# outside the coverage run, whose tracing made them several times slower; their adapters' own
# lines are measured by the frames layer's floor from tests/frames/test_core.py.
echo "== pytest: the warehouse engines"; HYPOTHESIS_PROFILE=ci "$VENV/bin/python" -m pytest -q tests/frames/test_engines.py
echo "== coverage per layer (floors in scripts/coverage_layers.py)"; "$VENV/bin/python" scripts/coverage_layers.py
echo "== audit"; "$VENV/bin/guidance-rules" audit --html audit-report.html
