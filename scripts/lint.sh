#!/usr/bin/env bash
# `make lint`: ruff and mypy over the whole repository (configuration in pyproject.toml),
# then pip-audit over the locked dependencies.
# All always run, so one pass shows every problem.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
rc=0
echo "--> ruff check ."
.venv/bin/ruff check . || rc=1
echo "--> mypy ."
.venv/bin/mypy . || rc=1
# Known vulnerabilities in the locked dependencies (PyPI's vulnerability data). A package
# that cannot be audited is reported as NOT AUDITED, never as clean; it fails the lint
# only with CARMFG_REQUIRE_AUDIT=1, because on networks that proxy only the package
# registry the database is never reachable (README, Security).
echo "--> pip-audit (uv.lock)"
requirements="$(mktemp)"
trap 'rm -f "$requirements"' EXIT
if ! uv export --frozen --format requirements-txt --no-emit-project --quiet >"$requirements" \
    || ! .venv/bin/python scripts/dependency_audit.py "$requirements"; then
  echo "!! dependency audit FAILED (a known vulnerability above, or no report)" >&2
  rc=1
fi
exit "$rc"
