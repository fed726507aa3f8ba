#!/bin/sh
# The web container's command: migrate as the owner role, grant the application role
# its (append-only on the audit trail) privileges, then serve as the application role.
set -eu
cd /app

as_owner() {
    DATABASE_URL="$DATABASE_OWNER_URL" DATABASE_PASSWORD_FILE="$DATABASE_OWNER_PASSWORD_FILE" "$@"
}

as_owner python manage.py migrate --noinput
as_owner python manage.py db_grant_app_role "$DATABASE_APP_ROLE"

exec gunicorn carmfg.wsgi:application \
    --bind 0.0.0.0:8000 \
    --workers "${GUNICORN_WORKERS:-3}" \
    --timeout 120 \
    --access-logfile - \
    --error-logfile -
