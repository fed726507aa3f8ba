"""A lost database connection is told to the user as "not saved, try again" (503),
never a 500, on pages, htmx fragments and the API. The end-to-end case, with a real
PostgreSQL backend killed mid-save, is in tests/batches/test_faults_steps.py.

Jobs queued in Redis survive a Redis crash (append-only file, fsync always, as in
docker-compose): every one runs once Redis is back."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import redis
from celery import Celery
from django.contrib.auth.models import AnonymousUser
from django.db import InterfaceError, OperationalError
from django.test import RequestFactory

from carmfg.api.errors import problem_details_handler
from carmfg.errors import GMPErrorMiddleware
from tests.fixtures.services import CeleryWorker, _database_url, _die_with_parent, service_missing

pytestmark = pytest.mark.django_db


def _request(*, htmx: bool):
    request = RequestFactory().post("/batches/1/steps/2/record/")
    request.user = AnonymousUser()
    request.htmx = htmx  # type: ignore[attr-defined]  # set by django-htmx's middleware
    return request


@pytest.mark.parametrize("error", [OperationalError("terminating connection due to administrator command"),
                                   InterfaceError("connection already closed")])
@pytest.mark.parametrize("htmx", [False, True])
def test_a_lost_database_connection_is_a_503_saying_not_saved_try_again(error, htmx):
    response = GMPErrorMiddleware(lambda r: None).process_exception(_request(htmx=htmx), error)

    assert response is not None
    assert response.status_code == 503
    text = response.content.decode()
    assert "Not saved" in text
    assert "try again" in text
    assert "administrator command" not in text  # the server's words stay in the log


def test_an_unrelated_error_is_left_to_django():
    assert GMPErrorMiddleware(lambda r: None).process_exception(_request(htmx=False), ValueError("bug")) is None


def test_the_api_answers_a_lost_connection_with_a_503_problem():
    response = problem_details_handler(OperationalError("server closed the connection unexpectedly"), {})

    assert response is not None
    assert response.status_code == 503
    assert response.content_type == "application/problem+json"
    assert "try again" in response.data["detail"]


# --- Redis restarted with jobs queued ----------------------------------------------------------

QUEUED_JOBS = 40


class OwnRedis:
    """A redis-server of this test alone (temporary dir, free port), configured as in
    docker-compose: append-only file, fsync on every write, no RDB snapshots."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            service_missing("redis-server is not installed (apt-get install redis-server)")
        assert binary is not None
        self.process = subprocess.Popen(
            [binary, "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.directory),
             "--appendonly", "yes", "--appendfsync", "always", "--save", ""],
            stdout=(self.directory / "redis.log").open("ab"), stderr=subprocess.STDOUT, preexec_fn=_die_with_parent,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if redis.Redis.from_url(self.url, socket_connect_timeout=1).ping():
                    return
            except redis.ConnectionError:
                time.sleep(0.05)
        pytest.fail(f"own redis-server did not start: {(self.directory / 'redis.log').read_text()[-2000:]}")

    def crash(self) -> None:
        """SIGKILL: no shutdown save, only what the append-only file already holds."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _client_app(url: str) -> Celery:
    """A Celery client of the test's own Redis (carmfg's app stays on the shared one).

    ``set_as_current=False``: a new Celery app otherwise becomes the process's current
    app, and every later ``shared_task`` call in this pytest worker would go to this
    test's Redis after it is gone (seen in CI: the next PDF tests never got their job)."""
    client = Celery("carmfg-faults", broker=url, backend=url, set_as_current=False)
    client.conf.update(task_serializer="json", result_serializer="json", accept_content=["json"])
    return client


@pytest.mark.integration
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_jobs_queued_when_redis_crashes_all_run_after_it_restarts(tmp_path, site, technician, worker_id):
    from django.db import connection

    own = OwnRedis(tmp_path)
    own.start()
    queue = f"carmfg-redis-restart-{worker_id}-{os.getpid()}"
    worker = CeleryWorker(database_url=_database_url(connection.settings_dict), redis_url=own.url, name=queue,
                          log_path=tmp_path / "worker.log")
    try:
        sender = _client_app(own.url)
        ids = [sender.send_task("carmfg.audit.tasks.audit_chain_verify", args=[[site.pk]], queue=queue).id
               for _ in range(QUEUED_JOBS)]
        sender.close()

        own.crash()
        own.start()  # same directory and port: replays the append-only file

        assert redis.Redis.from_url(own.url).llen(queue) == QUEUED_JOBS
        reader = _client_app(own.url)
        worker.control_app = reader
        worker.start(timeout=180)  # a loaded 2-core machine has taken ~60 s to start one
        summaries = [reader.AsyncResult(task_id).get(timeout=120) for task_id in ids]
        assert len(summaries) == QUEUED_JOBS
        assert all(s["ok"] and s["worker"] == worker.hostname for s in summaries)
        assert redis.Redis.from_url(own.url).llen(queue) == 0
        reader.close()
    finally:
        worker.stop()
        own.stop()
