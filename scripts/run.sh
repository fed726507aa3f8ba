#!/usr/bin/env bash
# `make run`: the demo on http://127.0.0.1:8000 from a fresh clone. Embedded SQLite
# database under var/, Celery tasks run in-process (REDIS_URL unset), demo users.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

HOST="${HOST:-127.0.0.1}"
PORT="${PORT:-8000}"
# The demo is always the embedded one, whatever this shell has exported.
unset DATABASE_URL REDIS_URL
export CARMFG_ENV=demo

say "Python environment (uv sync --frozen --no-dev)"
# --inexact: in a developer's checkout, keep the dev tools (pytest, ruff) installed.
uv_sync --no-dev --inexact

say "translations (gettext: msgfmt)"
apt_ensure gettext
bash scripts/messages.sh compile

say "database: var/carmfg.sqlite3"
.venv/bin/python manage.py migrate --noinput

say "demo data"
logins="$(.venv/bin/python manage.py seed_demo)"

cat <<BANNER

==============================================================================
 carmfg demo: http://$HOST:$PORT/   (log in at http://$HOST:$PORT/accounts/login/)
==============================================================================
$logins

 Celery tasks run in-process; data is in var/carmfg.sqlite3; e-mails the
 demo would send (late QC results) are written to var/mail/. Ctrl-C stops.
==============================================================================

BANNER

exec .venv/bin/gunicorn carmfg.wsgi:application --bind "$HOST:$PORT" \
    --workers 2 --threads 4 --access-logfile - --error-logfile -
