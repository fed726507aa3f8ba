#!/usr/bin/env bash
# `make lint`: ruff and mypy over the whole repository (configuration in pyproject.toml),
# then pip-audit over the locked dependencies.
# Both always run, so one pass shows every problem.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
rc=0
echo "--> ruff check ."
.venv/bin/ruff check . || rc=1
echo "--> mypy ."
.venv/bin/mypy . || rc=1
# Known vulnerabilities in the locked dependencies (PyPI's vulnerability data). --strict:
# a package that cannot be audited (e.g. the database is unreachable) is a failure, never
# a silent pass.
echo "--> pip-audit --strict (uv.lock)"
requirements="$(mktemp)"
trap 'rm -f "$requirements"' EXIT
if ! uv export --frozen --format requirements-txt --no-emit-project --quiet >"$requirements" \
    || ! .venv/bin/pip-audit --strict --disable-pip -r "$requirements" --progress-spinner off; then
  echo "!! pip-audit FAILED: a known vulnerability above, or its vulnerability database could not be" >&2
  echo "!! reached. The dependencies are NOT audited; this lint does not pass (see README, Security)." >&2
  rc=1
fi
exit "$rc"
