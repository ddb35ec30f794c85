#!/bin/sh
# Set everything up, then run the whole suite: lint, types, tests (with the CI hypothesis
# profile and branch coverage, each layer held to its floor), and the rule-coverage audit over
# the whole case space (one of the tests: GR_TEST_FULL_AUDIT_HTML, its HTML report kept as
# audit-report.html).
# PYTHON and VENV choose the interpreter and environment (see scripts/setup.sh).
# mypy and the warehouse engine tests run beside the coverage run, each in the background with its
# output shown when it ends: on their own each leaves a core idle for most of its time (mypy is
# one process; the engine tests' fixtures answer their rows one process at a time).
set -eu
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
sh scripts/setup.sh dev,spark,dask,ray  # the engines too: the frames adapters are tested on Dask, Spark and Ray
echo "== ruff"; "$VENV/bin/ruff" check guidance_rules tests benchmarks scripts
echo "== ruff format --check"; "$VENV/bin/ruff" format --check guidance_rules tests benchmarks scripts
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
"$VENV/bin/mypy" guidance_rules scripts/build_engine.py >"$logs/mypy" 2>&1 &
mypy=$!
# The warehouse engines over 100,000 rows each (Spark, Dask, Ray, batch and one-by-one answers):
# outside the coverage run, whose tracing made them several times slower; their adapters' own
# lines are measured by the frames layer's floor from tests/frames/test_core.py.
HYPOTHESIS_PROFILE=ci "$VENV/bin/python" -m pytest -q tests/frames/test_engines.py >"$logs/engines" 2>&1 &
engines=$!
failed=""
echo "== pytest (with branch coverage; --dist loadgroup: tests sharing a costly fixture share a worker)"
GR_TEST_FULL_AUDIT_HTML=audit-report.html HYPOTHESIS_PROFILE=ci "$VENV/bin/python" -m pytest -q -n auto --dist loadgroup \
    --cov --cov-report= --ignore=tests/frames/test_engines.py || failed="$failed pytest"
echo "== mypy --strict"; wait "$mypy" || failed="$failed mypy"; cat "$logs/mypy"
echo "== pytest: the warehouse engines"; wait "$engines" || failed="$failed engines"; cat "$logs/engines"
if [ -n "$failed" ]; then
    echo "FAILED:$failed" >&2
    exit 1
fi
echo "== coverage per layer (floors in scripts/coverage_layers.py)"; "$VENV/bin/python" scripts/coverage_layers.py
