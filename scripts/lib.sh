# Shared shell helpers for the project's scripts. Source it; do not run it.
# shellcheck shell=bash

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export UV_PYTHON_DOWNLOADS=never  # uv cannot fetch interpreters here: use the machine's Python 3.11+
UV_VERSION="${UV_VERSION:-0.13.9}"

say() { printf '\n==> %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
is_root() { [ "$(id -u)" = 0 ]; }

# Install Debian packages that are missing (root only). `apt-get update` runs only
# when something has to be installed, so a provisioned machine pays nothing.
apt_ensure() {
    local missing=() pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    if ! is_root; then
        die "missing Debian packages: ${missing[*]} (run as root, or: apt-get install ${missing[*]})"
    fi
    say "installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

# Sets UV to a command that runs uv, installing uv with pip when it is missing.
ensure_uv() {
    if command -v uv >/dev/null 2>&1; then UV=(uv); return; fi
    if python3 -m uv --version >/dev/null 2>&1; then UV=(python3 -m uv); return; fi
    say "installing uv ${UV_VERSION} with pip"
    if ! python3 -m pip --version >/dev/null 2>&1; then
        apt_ensure python3-pip
    fi
    # Debian's own python3 refuses pip installs (PEP 668); uv alone is harmless there.
    python3 -m pip install --quiet "uv==${UV_VERSION}" 2>/dev/null \
        || python3 -m pip install --quiet --break-system-packages "uv==${UV_VERSION}"
    hash -r
    if command -v uv >/dev/null 2>&1; then UV=(uv); else UV=(python3 -m uv); fi
}

# uv sync from the lock file, never re-resolving. Extra arguments go to uv sync.
uv_sync() {
    ensure_uv
    (cd "$ROOT" && "${UV[@]}" sync --frozen "$@")
}

# A TCP port on the loopback that nothing listens on right now.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}
