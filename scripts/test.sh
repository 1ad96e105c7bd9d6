#!/usr/bin/env bash
# The test command: lint, type-check, then every test layer (tests/unit, tests/integration
# with real pip/pip-compile/uv and a loopback index, tests/docker with the real engine).
# Expects the package installed with its test extra (.ci/run does that on a fresh machine).
set -euo pipefail
cd "$(dirname "$0")/.."
python -m ruff check wheelhouse tests bench scripts
python -m ruff format --check wheelhouse tests bench scripts
python -m mypy
lint-imports  # the layering contracts in pyproject.toml
python -m pytest -ra "$@"
