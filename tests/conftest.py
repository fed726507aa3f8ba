"""Personas and starting states shared by every test.

Factories build only starting states (sites, users with roles); later states are
reached through the services, as a user would reach them.
"""

from __future__ import annotations

import pytest
from django.test import Client

from carmfg.accounts.models import Role
from carmfg.accounts.services import membership_set_roles, site_create, user_create

pytest_plugins = ["tests.fixtures.services"]

PASSWORD = "correct-horse-battery-9"


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """``@pytest.mark.postgres`` tests need PostgreSQL. Checked before any fixture is set
    up: on SQLite a transactional test's flush would hit the append-only triggers."""
    if item.get_closest_marker("postgres"):
        from django.conf import settings

        if not settings.DATABASES["default"]["ENGINE"].endswith("postgresql"):
            from tests.fixtures.services import service_missing

            service_missing("this test needs PostgreSQL (set DATABASE_URL, or run `make test`)")


@pytest.fixture(autouse=True)
def _celery_in_process(request):
    """Queued tasks run in the test's process, whatever REDIS_URL says; the real broker
    and worker are exercised by the tests marked ``integration`` (tests/fixtures/services.py)."""
    if request.node.get_closest_marker("integration"):
        yield
        return
    from carmfg.celery import app

    saved = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager, app.conf.task_eager_propagates = True, True
    yield
    app.conf.task_always_eager, app.conf.task_eager_propagates = saved


@pytest.fixture(autouse=True)
def _carmfg_stays_the_current_celery_app():
    """A test that builds another Celery app must pass ``set_as_current=False``: otherwise
    every later task call in this pytest worker goes to that app's broker (once, in CI,
    a fault test's Redis that no longer existed)."""
    from celery import current_app

    from carmfg.celery import app

    yield
    if current_app.main != app.main:
        other = current_app.main
        app.set_current()
        pytest.fail(f"this test left Celery app {other!r} as the current app; create it with set_as_current=False")


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _default_language_after_each_test():
    """A request's language (Accept-Language, a user's profile) stays active in the thread
    after the test client's response; the next test starts in the default language, as a
    new request does (a signed record requested outside a request takes the active one)."""
    yield
    from django.utils import translation

    translation.deactivate()


@pytest.fixture
def make_site(db):
    counter = {"n": 0}

    def make(code: str | None = None, *, time_zone: str = "Europe/Moscow", fin: str | None = None):
        counter["n"] += 1
        n = counter["n"]
        code = code or f"site{n}"
        return site_create(
            actor=None,
            code=code,
            name=f"Test Cell Therapy Unit {code}",
            time_zone=time_zone,
            facility_identification_number=fin or f"T{n:04d}",
        )

    return make


@pytest.fixture
def site(make_site):
    return make_site("home", fin="W0001")


@pytest.fixture
def other_site(make_site):
    return make_site("away", time_zone="Europe/Madrid", fin="E0002")


@pytest.fixture
def make_user(db):
    def make(username: str, *, roles: list[str], site, full_name: str | None = None):
        user = user_create(
            actor=None,
            username=username,
            full_name=full_name or f"{username.title()} Tester",
            email=f"{username}@test.invalid",
            password=PASSWORD,
        )
        membership_set_roles(actor=None, user=user, site=site, roles=roles)
        return user

    return make


@pytest.fixture
def technician(make_user, site):
    return make_user("tech", roles=[Role.TECHNICIAN], site=site, full_name="Irina Sokolova")


@pytest.fixture
def verifier(make_user, site):
    return make_user("verifier", roles=[Role.TECHNICIAN, Role.VERIFIER], site=site, full_name="Pavel Orlov")


@pytest.fixture
def qc_analyst(make_user, site):
    return make_user("qc", roles=[Role.QC_ANALYST], site=site, full_name="Olga Mironova")


@pytest.fixture
def qc_reviewer(make_user, site):
    return make_user("qc2", roles=[Role.QC_ANALYST], site=site, full_name="Dmitry Lebedev")


@pytest.fixture
def qp(make_user, site):
    return make_user("qp", roles=[Role.QUALIFIED_PERSON], site=site, full_name="Elena Volkova")


@pytest.fixture
def coordinator(make_user, site):
    return make_user("coord", roles=[Role.COORDINATOR], site=site, full_name="Anna Petrova")


@pytest.fixture
def auditor(make_user, site):
    return make_user("auditor", roles=[Role.AUDITOR], site=site, full_name="Mark Stein")


@pytest.fixture
def site_admin(make_user, site):
    return make_user("admin", roles=[Role.SITE_ADMIN], site=site, full_name="Sergei Kuznetsov")


@pytest.fixture
def other_site_user(make_user, other_site):
    """Holds every role, but at another site: must see nothing of ``site``."""
    return make_user("stranger", roles=list(Role.values), site=other_site, full_name="Lucía Fernández")


@pytest.fixture
def client_for(db):
    def make(user) -> Client:
        client = Client()
        client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
        return client

    return make


def assert_hidden(client: Client, url: str, *, methods=("get", "post")) -> None:
    """A user of another site gets 404 for ``url``: the object is not even said to exist."""
    for method in methods:
        response = getattr(client, method)(url)
        assert response.status_code == 404, f"{method.upper()} {url} gave {response.status_code}, expected 404"
