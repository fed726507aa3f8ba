#!/usr/bin/env bash
# Create the secret files docker-compose.yml reads (./secrets/ or $CARMFG_SECRETS_DIR),
# random and readable by their owner only. Existing files are kept.
set -euo pipefail
dir="${CARMFG_SECRETS_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/secrets}"
umask 077
mkdir -p "$dir"
for name in secret_key postgres_password db_owner_password db_app_password; do
    if [ -s "$dir/$name" ]; then
        echo "kept    $dir/$name"
    else
        python3 -c 'import secrets; print(secrets.token_urlsafe(64))' >"$dir/$name"
        echo "created $dir/$name"
    fi
done
