#!/usr/bin/env bash
# `make test`: the whole suite, from a fresh clone on a fresh Debian machine.
#   1. install the Debian packages the tests need (as root; apt-get update only if needed)
#   2. uv sync --frozen (dev group included)
#   3. start throw-away PostgreSQL and Redis on the loopback
#   4. lint (ruff, mypy) and the migrations check
#   5. fast unit layer on SQLite, Celery eager (no DATABASE_URL / REDIS_URL)
#   6. the whole suite against PostgreSQL + Redis + real Celery workers
# Every stage after setup runs even if an earlier one failed, so one CI log shows
# everything that is wrong; the script exits non-zero if any stage failed.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$ROOT/scripts/services.sh"
cd "$ROOT"

# Debian packages the test suite needs. Append here when a test needs another one.
APT_PACKAGES="postgresql redis-server chromium chromium-driver poppler-utils docker-compose gettext"

# pytest -n: 2 workers = the machine's 2 cores; measured 2026-11-23 with 216 tests:
# unit layer 59 s serial -> 30 s, whole suite 56 s -> 38 s. PYTEST_WORKERS=0: serial.
PYTEST_WORKERS="${PYTEST_WORKERS:-2}"
PYTEST_TIMEOUT="${PYTEST_TIMEOUT:-600}"  # seconds per test: a hung test fails instead of eating CI's 90 minutes

START=$SECONDS
RESULTS=()
FAILED=0

stage() {  # stage NAME COMMAND...
    local name="$1" t0=$SECONDS rc=0
    shift
    say "$name"
    "$@" || rc=$?
    if [ "$rc" -eq 0 ]; then
        RESULTS+=("ok    $name ($((SECONDS - t0)) s)")
    else
        FAILED=1
        RESULTS+=("FAIL  $name (exit $rc, $((SECONDS - t0)) s)")
    fi
}

# pytest exits 5 when it collected no test: for us that is a failure, never a pass.
run_pytest() {
    local rc=0
    .venv/bin/pytest "$@" || rc=$?
    if [ "$rc" -eq 5 ]; then
        echo "pytest collected no tests (exit 5): counted as a failure" >&2
    fi
    return "$rc"
}

parallel_args() {
    [ "$PYTEST_WORKERS" != 0 ] && echo "-n $PYTEST_WORKERS"
    return 0
}

unit_layer() {
    (
        unset DATABASE_URL REDIS_URL
        # shellcheck disable=SC2046
        CARMFG_ENV=test run_pytest $(parallel_args) -m "not integration and not e2e" -p no:cacheprovider \
            --timeout="$PYTEST_TIMEOUT" --junitxml=test-artifacts/junit-unit.xml
    )
}

full_suite() {
    # shellcheck disable=SC2046
    CARMFG_ENV=test run_pytest $(parallel_args) -p no:cacheprovider --timeout="$PYTEST_TIMEOUT" \
        --junitxml=test-artifacts/junit-full.xml
}

migrations_check() {
    .venv/bin/python manage.py makemigrations --check --dry-run
}

finish() {
    local rc=$?
    services_stop
    if [ "${#RESULTS[@]}" -gt 0 ]; then
        say "make test summary ($((SECONDS - START)) s in all)"
        printf '  %s\n' "${RESULTS[@]}"
    fi
    exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT TERM

say "machine: $(. /etc/os-release && echo "$PRETTY_NAME"), $(nproc) cores, $(python3 --version)"
[ "${CI:-}" = true ] && echo "CI=true: a test that needs a missing service fails instead of skipping"

t0=$SECONDS
say "Debian packages: $APT_PACKAGES"
# shellcheck disable=SC2086
apt_ensure $APT_PACKAGES
RESULTS+=("ok    Debian packages ($((SECONDS - t0)) s)")

t0=$SECONDS
say "Python environment (uv sync --frozen, dev group included)"
uv_sync
echo "$(.venv/bin/python --version) in .venv"
RESULTS+=("ok    uv sync ($((SECONDS - t0)) s)")

t0=$SECONDS
say "translations: locale/*/LC_MESSAGES/django.po -> .mo"
bash scripts/messages.sh compile
RESULTS+=("ok    translations compiled ($((SECONDS - t0)) s)")

t0=$SECONDS
say "throw-away PostgreSQL and Redis"
services_start
RESULTS+=("ok    services started ($((SECONDS - t0)) s)")
mkdir -p test-artifacts

stage "lint (ruff, mypy)" bash scripts/lint.sh
stage "migrations match the models" migrations_check
stage "unit layer: SQLite, Celery eager (pytest -n $PYTEST_WORKERS -m 'not integration and not e2e')" unit_layer
stage "whole suite: PostgreSQL + Redis + Celery worker (pytest -n $PYTEST_WORKERS)" full_suite

exit "$FAILED"
