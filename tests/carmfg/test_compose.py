"""docker-compose.yml keeps the production shape that docs/deployment.md promises.

The structure is checked by parsing the YAML, which always runs. A Compose CLI also
validates the file (``config -q``, no daemon needed): the v2 plugin where installed,
else Debian's ``docker-compose``, which ``make test`` installs (APT_PACKAGES). So the
file stays readable by Compose v1 too: no v2-only keys such as a top-level ``name``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.fixtures.services import service_missing

ROOT = Path(__file__).resolve().parents[2]
SERVICES = {"postgres", "redis", "web", "worker", "beat"}
SECRET_NAME = re.compile(r"SECRET|PASSWORD|PASSWD|TOKEN|KEY$", re.IGNORECASE)


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _env(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def _command(service: dict) -> str:
    command = service.get("command") or ""
    return " ".join(command) if isinstance(command, list) else command


def test_compose_has_database_queue_web_worker_and_beat(compose):
    assert set(compose["services"]) >= SERVICES


def test_every_app_service_runs_in_production_mode_on_postgres_and_redis(compose):
    for name in ("web", "worker", "beat"):
        env = _env(compose["services"][name])
        assert env["CARMFG_ENV"] == "production", name
        assert env["DATABASE_URL"].startswith("postgres://"), name
        assert env["REDIS_URL"].startswith("redis://"), name
        assert env.get("SECRET_KEY_FILE", "").startswith("/run/secrets/"), name
    assert "worker" in _command(compose["services"]["worker"])
    assert "beat" in _command(compose["services"]["beat"])


def test_redis_keeps_queued_jobs_across_a_restart(compose):
    redis = compose["services"]["redis"]
    command = _command(redis)
    assert re.search(r"--appendonly\s+yes", command)
    assert re.search(r"--appendfsync\s+always", command)
    assert any(str(v).endswith(":/data") for v in redis.get("volumes", []))
    assert "healthcheck" in redis


def test_postgres_has_a_volume_a_healthcheck_and_the_role_init_script(compose):
    postgres = compose["services"]["postgres"]
    volumes = [str(v) for v in postgres.get("volumes", [])]
    assert any(v.endswith(":/var/lib/postgresql/data") for v in volumes)
    init = [v for v in volumes if "/docker-entrypoint-initdb.d/" in v]
    assert init
    assert (ROOT / init[0].split(":")[0]).is_file()
    assert "healthcheck" in postgres


def test_web_is_health_checked_on_healthz_and_migrates_as_the_owner(compose):
    web = compose["services"]["web"]
    check = web["healthcheck"]["test"]
    script = ROOT / "scripts/docker/healthcheck.py"
    assert "healthcheck.py" in " ".join(check)
    assert "/healthz" in script.read_text()
    start = ROOT / _command(web).removeprefix("/app/")
    text = start.read_text()
    assert "migrate" in text
    assert "db_grant_app_role" in text
    assert "gunicorn" in text
    env = _env(web)
    assert env["DATABASE_OWNER_URL"] != env["DATABASE_URL"]  # the app never runs as the owner


def test_no_secret_is_written_into_the_compose_file(compose):
    text = (ROOT / "docker-compose.yml").read_text()
    assert not re.search(r"://[^/\s:@]+:[^@\s]+@", text), "a password inside a URL"
    for name, service in compose["services"].items():
        for key, value in _env(service).items():
            if SECRET_NAME.search(key) and not key.endswith("_FILE"):
                assert value == "" or re.fullmatch(r"\$\{[A-Z_]+\}", value), f"{name}: {key} has a value"
            if key.endswith("_FILE") and SECRET_NAME.search(key.removesuffix("_FILE")):
                assert value.startswith("/run/secrets/"), f"{name}: {key} is not a Docker secret"
    for secret in compose.get("secrets", {}).values():
        assert "file" in secret or "environment" in secret


def test_image_is_slim_python_311_locked_and_not_root():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim", dockerfile, re.MULTILINE)
    assert "uv sync --frozen --no-dev" in dockerfile
    assert "libpango-1.0-0" in dockerfile
    assert "libpangoft2-1.0-0" in dockerfile
    assert "collectstatic" in dockerfile
    users = re.findall(r"^USER\s+(\S+)", dockerfile, re.MULTILINE)
    assert users
    assert users[-1] not in {"root", "0"}


def _compose_command() -> list[str] | None:
    """The Compose CLI that can validate the file: the v2 plugin (`docker compose`) where
    installed, else Debian's `docker-compose` (which `make test` installs). No daemon is
    needed for `config`."""
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30, check=False)
        if probe.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def test_compose_file_is_valid_for_docker_compose(tmp_path):
    command = _compose_command()
    if command is None:
        service_missing("neither `docker compose` nor `docker-compose` is installed")
        return
    for name in ("secret_key", "postgres_password", "db_owner_password", "db_app_password"):
        (tmp_path / name).write_text("dummy\n")
    result = subprocess.run(
        [*command, "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
        capture_output=True, text=True, timeout=60, check=False, cwd=ROOT,
        env={**os.environ, "CARMFG_SECRETS_DIR": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr
