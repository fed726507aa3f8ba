#!/usr/bin/env bash
# Run one command with throw-away PostgreSQL and Redis (DATABASE_URL and REDIS_URL
# exported), e.g. `bash scripts/with-services.sh .venv/bin/python bench/run.py`.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$ROOT/scripts/services.sh"
[ "$#" -gt 0 ] || die "usage: scripts/with-services.sh COMMAND [ARGS...]"
trap services_stop EXIT
trap 'exit 130' INT TERM
services_start
"$@"
