"""Real-browser journeys: Debian's Chromium, driven by Playwright, against a live Django
server, with a real Celery worker that signs the PDF batch records.

Every test here needs PostgreSQL (the live server and the worker process must read the
same committed data), Redis, a worker and Chromium: each is checked by the helpers of
``tests/fixtures/services.py``, so a missing one skips on a developer machine and
fails under ``CI=true``.

Screenshots of the key steps go to ``test-artifacts/e2e/<journey>/`` at the top of the
repository (``E2E_ARTIFACTS`` moves them). axe-core (bundled by axe-playwright-python)
checks the key pages: a violation of impact serious or critical fails the test.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import PASSWORD
from tests.fixtures.services import REPO_ROOT, CeleryWorker, _database_url, service_missing
from tests.qc.record_fixtures import record_pki_fixture, record_tsa_fixture  # noqa: F401

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(os.environ.get("E2E_ARTIFACTS") or REPO_ROOT / "test-artifacts" / "e2e")
SERIOUS = ("serious", "critical")


# Each journey module carries: pytestmark = JOURNEY_MARKS
JOURNEY_MARKS = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


# --- the browser ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def _playwright():
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    chromium = shutil.which("chromium")
    if chromium is None:
        service_missing("the browser journeys need Debian's chromium (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:  # pragma: no cover - in the lock
        service_missing(f"playwright is not installed: {exc}")
    pw = sync_playwright().start()
    browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
    yield browser
    browser.close()
    pw.stop()


@pytest.fixture
def browser(_playwright, live_server):
    return _playwright


# --- the worker that signs the records ---------------------------------------------------------------


@pytest.fixture(scope="session")
def _e2e_worker(django_db_setup, django_db_blocker, redis_url, worker_id, tmp_path_factory, record_pki, record_tsa):
    """A Celery worker of its own for the journeys: it reads the test database, keeps its
    records under a temporary MEDIA_ROOT and signs with the test PKI and TSA."""
    from django.db import connection

    if connection.vendor != "postgresql":
        service_missing("the browser journeys need a PostgreSQL test database (set DATABASE_URL, or run `make test`)")
    media = tmp_path_factory.mktemp("e2e-media")
    env = {"MEDIA_ROOT": str(media), "CARMFG_PKI_DIR": str(record_pki.directory), "CARMFG_TSA_URL": record_tsa.url}
    name = f"carmfg-e2e-{worker_id}-{os.getpid()}"
    worker = CeleryWorker(database_url=_database_url(connection.settings_dict), redis_url=redis_url, name=name,
                          log_path=tmp_path_factory.mktemp("celery") / f"{name}.log")
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        worker.start(timeout=240)  # slow to import on a loaded 2-core machine
    worker.media = media  # type: ignore[attr-defined]
    yield worker
    worker.stop()


@pytest.fixture
def e2e_worker(_e2e_worker, transactional_db, settings, record_pki, record_tsa):
    """The worker, reached through Redis; this process (the live server) stores and signs
    in the same places, so a record the worker made can be downloaded."""
    from carmfg.celery import app

    if not _e2e_worker.alive():
        pytest.fail(f"the celery worker died:\n{_e2e_worker.log()}")
    settings.MEDIA_ROOT = _e2e_worker.media
    settings.CARMFG_PKI_DIR = record_pki.directory
    settings.CARMFG_SIGNING_KEY_FILE = None
    settings.CARMFG_SIGNING_CERT_FILE = None
    settings.CARMFG_SIGNING_CA_FILE = None
    settings.CARMFG_TSA_URL = record_tsa.url
    saved = app.conf.task_default_queue, app.conf.task_always_eager
    app.conf.task_default_queue = _e2e_worker.queue
    app.conf.task_always_eager = False
    yield _e2e_worker
    app.conf.task_default_queue, app.conf.task_always_eager = saved


# --- a user at a browser -------------------------------------------------------------------------


@dataclass
class Session:
    """One person's browser context, logged in through the real login form."""

    page: object
    base_url: str
    shots: Path
    axe_checked: list[str] = field(default_factory=list)

    def go(self, path: str):
        self.page.goto(self.base_url + path)  # type: ignore[attr-defined]
        return self.page

    def shot(self, name: str) -> Path:
        self.shots.mkdir(parents=True, exist_ok=True)
        path = self.shots / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True, animations="disabled", caret="initial")  # type: ignore[attr-defined]
        return path

    def axe(self, what: str) -> None:
        """axe-core on the page as it is now: no violation of impact serious or critical."""
        from axe_playwright_python.sync_playwright import Axe

        results = Axe().run(self.page)
        bad = [v for v in results.response["violations"] if v.get("impact") in SERIOUS]
        self.axe_checked.append(what)
        assert not bad, f"axe-core on {what}:\n" + "\n".join(
            f"- {v['id']} ({v['impact']}): {v['help']} at "
            + ", ".join(" ".join(n["target"]) for n in v["nodes"][:5]) for v in bad)

    def expect_message(self, pattern: str) -> None:
        from playwright.sync_api import expect

        expect(self.page.locator("#messages")).to_contain_text(re.compile(pattern))  # type: ignore[attr-defined]


@pytest.fixture
def as_user(browser, live_server, request) -> Iterator[Callable[..., Session]]:
    """``as_user(user)``: a fresh browser context logged in as ``user`` (password PASSWORD)."""
    contexts = []
    journey = re.sub(r"[^a-z0-9_]+", "-", request.node.name.lower())[:80]

    def make(user, *, viewport=None) -> Session:
        context = browser.new_context(viewport=viewport or {"width": 1280, "height": 900}, accept_downloads=True)
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        session = Session(page=page, base_url=live_server.url, shots=ARTIFACTS / journey)
        page.goto(live_server.url + "/accounts/login/")
        page.fill("#id_username", user.username)
        page.fill("#id_password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(live_server.url + "/")
        return session

    yield make
    for context in contexts:
        context.close()


def wait_for(predicate, *, timeout: float, what: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


# --- starting states --------------------------------------------------------------------------------


@pytest.fixture
def product(site):
    """The demo's anti-CD19 product with the shipped specification in force."""
    from tests.fixtures.products import cd19_product

    return cd19_product(site)


@pytest.fixture
def floor(product, site, site_admin, qp):
    """The shipped recipe in force, the demo's lots (one expired) and equipment."""
    from batches.demo_mbr import load_demo_materials, load_shipped_mbr

    mbr = load_shipped_mbr(product=product, admin=site_admin, qp=qp, password=PASSWORD)
    load_demo_materials(site=site, admin=site_admin, qp=qp, password=PASSWORD)
    return mbr
