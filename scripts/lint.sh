#!/usr/bin/env bash
# `make lint`: ruff and mypy over the whole repository (configuration in pyproject.toml).
# Both always run, so one pass shows every problem.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
rc=0
echo "--> ruff check ."
.venv/bin/ruff check . || rc=1
echo "--> mypy ."
.venv/bin/mypy . || rc=1
exit "$rc"
