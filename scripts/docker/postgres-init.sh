#!/bin/bash
# Runs once, when the postgres container starts on an empty volume (the image's
# /docker-entrypoint-initdb.d). Two login roles, as docs/deployment.md explains:
#   CARMFG_DB_OWNER  owns the database and its tables, runs the migrations
#   CARMFG_DB_APP    what web, worker and beat log in as; owns nothing and gets its
#                    privileges from `manage.py db_grant_app_role` after each migrate
# Passwords come from Docker secrets, never from the environment.
set -euo pipefail

owner="${CARMFG_DB_OWNER:-carmfg_owner}"
app="${CARMFG_DB_APP:-carmfg_app}"
db="${POSTGRES_DB:-carmfg}"
secrets="${CARMFG_SECRETS_PATH:-/run/secrets}"

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$db" \
    -v owner="$owner" -v app="$app" -v db="$db" \
    -v owner_password="$(cat "$secrets/db_owner_password")" \
    -v app_password="$(cat "$secrets/db_app_password")" <<'SQL'
CREATE ROLE :"owner" LOGIN PASSWORD :'owner_password';
CREATE ROLE :"app" LOGIN PASSWORD :'app_password' NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;
ALTER DATABASE :"db" OWNER TO :"owner";
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE :"db" TO :"owner";
GRANT CONNECT ON DATABASE :"db" TO :"app";
-- Only the owner creates objects in the schema; the app role may only use them.
ALTER SCHEMA public OWNER TO :"owner";
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO :"app";
SQL
