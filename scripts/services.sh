# Throw-away PostgreSQL and Redis on the loopback, for tests and benchmarks.
# Source it after lib.sh; call services_start, and services_stop from a trap.
# Exports DATABASE_URL and REDIS_URL. Nothing is left behind: both servers live in
# temporary directories that services_stop removes.
# shellcheck shell=bash

PG_TMP=""
REDIS_TMP=""

_pg_bindir() {
    local dir=""
    if command -v pg_config >/dev/null 2>&1; then dir="$(pg_config --bindir 2>/dev/null || true)"; fi
    if [ -z "$dir" ] || [ ! -x "$dir/initdb" ]; then
        dir="$(find /usr/lib/postgresql -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1)"
    fi
    [ -n "$dir" ] && [ -x "$dir/initdb" ] || return 1
    printf '%s\n' "$dir"
}

# PostgreSQL refuses to run as root: run its tools as the postgres user.
_as_pg() {
    if is_root; then runuser -u postgres -- "$@"; else "$@"; fi
}

_wait_for() {  # _wait_for SECONDS COMMAND...
    local deadline=$((SECONDS + $1)); shift
    until "$@" >/dev/null 2>&1; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.1
    done
}

services_start_postgres() {
    local bindir port
    bindir="$(_pg_bindir)" || die "PostgreSQL server binaries not found (apt-get install postgresql)"
    PG_BIN="$bindir"
    PG_TMP="$(mktemp -d -t carmfg-pg.XXXXXX)"
    is_root && chown postgres:postgres "$PG_TMP"
    port="$(free_port)"
    if ! _as_pg "$bindir/initdb" -D "$PG_TMP/data" -U postgres --auth=trust --no-locale -E UTF8 \
            >"$PG_TMP/initdb.log" 2>&1; then
        cat "$PG_TMP/initdb.log" >&2
        die "initdb failed"
    fi
    # Durability settings off: this cluster is deleted when the run ends, and fsync
    # only makes every test that commits slower.
    if ! _as_pg "$bindir/pg_ctl" -D "$PG_TMP/data" -l "$PG_TMP/server.log" -w -t 60 \
            -o "-c listen_addresses=127.0.0.1 -p $port -k $PG_TMP -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
            start >/dev/null; then
        cat "$PG_TMP/server.log" >&2
        die "PostgreSQL did not start"
    fi
    PG_PORT="$port"
    _as_pg "$bindir/createdb" -h 127.0.0.1 -p "$port" -U postgres carmfg
    export DATABASE_URL="postgres://postgres@127.0.0.1:$port/carmfg"
    echo "PostgreSQL: $("$bindir/postgres" --version)"
    echo "  server says: $(_as_pg "$bindir/psql" -h 127.0.0.1 -p "$port" -U postgres -d carmfg -Atc 'SELECT version()')"
    echo "  DATABASE_URL=$DATABASE_URL (data in $PG_TMP)"
}

services_start_redis() {
    local port
    command -v redis-server >/dev/null 2>&1 || die "redis-server not found (apt-get install redis-server)"
    REDIS_TMP="$(mktemp -d -t carmfg-redis.XXXXXX)"
    port="$(free_port)"
    # AOF with fsync on every write: a queued job survives a Redis restart (measured:
    # without it a restart lost 30 of 40 queued jobs).
    redis-server --bind 127.0.0.1 --port "$port" --dir "$REDIS_TMP" \
        --appendonly yes --appendfsync always --save "" \
        --daemonize yes --pidfile "$REDIS_TMP/redis.pid" --logfile "$REDIS_TMP/redis.log"
    if ! _wait_for 20 redis-cli -h 127.0.0.1 -p "$port" ping; then
        cat "$REDIS_TMP/redis.log" >&2
        die "Redis did not start"
    fi
    REDIS_PORT="$port"
    export REDIS_URL="redis://127.0.0.1:$port/0"
    echo "Redis: $(redis-server --version)"
    echo "  server says: $(redis-cli -h 127.0.0.1 -p "$port" INFO server | tr -d '\r' | grep '^redis_version:'), appendonly=$(redis-cli -h 127.0.0.1 -p "$port" CONFIG GET appendonly | tail -n 1), appendfsync=$(redis-cli -h 127.0.0.1 -p "$port" CONFIG GET appendfsync | tail -n 1)"
    echo "  REDIS_URL=$REDIS_URL (data in $REDIS_TMP)"
}

services_start() {
    services_start_postgres
    services_start_redis
}

services_stop() {
    if [ -n "$REDIS_TMP" ]; then
        if [ -f "$REDIS_TMP/redis.pid" ]; then
            local pid
            pid="$(cat "$REDIS_TMP/redis.pid")"
            kill "$pid" 2>/dev/null || true
            _wait_for 10 bash -c "! kill -0 $pid" || kill -9 "$pid" 2>/dev/null || true
        fi
        rm -rf "$REDIS_TMP"
        REDIS_TMP=""
    fi
    if [ -n "$PG_TMP" ]; then
        if [ -f "$PG_TMP/data/postmaster.pid" ]; then
            _as_pg "$PG_BIN/pg_ctl" -D "$PG_TMP/data" -m fast -w -t 30 stop >/dev/null 2>&1 \
                || _as_pg "$PG_BIN/pg_ctl" -D "$PG_TMP/data" -m immediate -w stop >/dev/null 2>&1 || true
        fi
        rm -rf "$PG_TMP"
        PG_TMP=""
    fi
}
