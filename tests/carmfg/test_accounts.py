"""Sites, roles, login, lockout and sessions (Foundation)."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.contrib.sessions.models import Session
from guardian.shortcuts import assign_perm

from carmfg.accounts.models import Role
from carmfg.accounts.permissions import SitePerm, has_site_perm
from carmfg.accounts.selectors import site_list_for_user
from carmfg.accounts.services import membership_set_roles
from carmfg.exceptions import InvalidInput, ReasonRequired
from tests.conftest import PASSWORD, assert_hidden

ROOT = Path(__file__).resolve().parents[2]


def login(client, username, password, ip="10.0.0.1"):
    return client.post("/accounts/login/", {"username": username, "password": password}, REMOTE_ADDR=ip)


def test_demo_user_can_log_in_and_reaches_home(client, technician):
    response = login(client, "tech", PASSWORD)
    assert response.status_code == 302
    home = client.get("/")
    assert home.status_code == 200
    assert "Irina Sokolova" in home.content.decode()


def test_anonymous_visitors_are_sent_to_login(client, db):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_site_of_another_hospital_is_404_not_403(client_for, site, other_site_user):
    assert_hidden(client_for(other_site_user), f"/accounts/sites/{site.pk}/", methods=("get",))


def test_own_site_detail_lists_people_and_roles(client_for, site, technician, qp):
    response = client_for(technician).get(f"/accounts/sites/{site.pk}/")
    assert response.status_code == 200
    assert "Elena Volkova" in response.content.decode()


def test_switching_to_a_site_without_a_role_is_404_and_changes_nothing(client_for, site, other_site, technician):
    client = client_for(technician)
    response = client.post("/accounts/site/", {"site": other_site.pk})
    assert response.status_code == 404
    assert client.get("/").context["current_site"] == site


def test_switching_between_own_sites(client_for, make_user, site, other_site):
    user = make_user("roamer", roles=[Role.AUDITOR], site=site)
    membership_set_roles(actor=None, user=user, site=other_site, roles=[Role.AUDITOR])
    client = client_for(user)
    assert client.post("/accounts/site/", {"site": other_site.pk, "next": "/"}).status_code == 302
    assert client.get("/").context["current_site"] == other_site


def test_switching_refuses_open_redirects(client_for, make_user, site):
    user = make_user("roamer", roles=[Role.AUDITOR], site=site)
    response = client_for(user).post("/accounts/site/", {"site": site.pk, "next": "https://evil.example/"})
    assert response["Location"] == "/"


def test_global_permissions_and_superuser_never_open_a_site(site, db):
    boss = get_user_model().objects.create_superuser("root", "root@test.invalid", PASSWORD)
    boss.user_permissions.add(Permission.objects.get(codename=SitePerm.ACCESS))
    assert list(site_list_for_user(boss)) == []
    assert not has_site_perm(boss, site, SitePerm.ACCESS)


def test_roles_give_exactly_their_permissions(site, technician, auditor):
    assert has_site_perm(technician, site, SitePerm.EXECUTE)
    assert not has_site_perm(technician, site, SitePerm.AUDIT)
    assert has_site_perm(auditor, site, SitePerm.AUDIT)
    assert not has_site_perm(auditor, site, SitePerm.EXECUTE)


def test_removing_a_role_removes_its_permissions_and_needs_a_reason(site, technician):
    with pytest.raises(ReasonRequired):
        membership_set_roles(actor=None, user=technician, site=site, roles=[Role.AUDITOR])
    membership_set_roles(actor=None, user=technician, site=site, roles=[Role.AUDITOR], reason="moved to QA")
    assert not has_site_perm(technician, site, SitePerm.EXECUTE)
    assert has_site_perm(technician, site, SitePerm.AUDIT)


def test_unknown_roles_are_refused(site, technician):
    with pytest.raises(InvalidInput, match="Unknown role"):
        membership_set_roles(actor=None, user=technician, site=site, roles=["janitor"], reason="x")


def test_an_object_permission_on_another_site_does_not_leak(site, other_site, technician):
    assign_perm("accounts.access_site", technician, other_site)
    assert set(site_list_for_user(technician)) == {site, other_site}
    assert not has_site_perm(technician, other_site, SitePerm.EXECUTE)


# --- Lockout -----------------------------------------------------------------------


def test_lockout_after_repeated_failures_for_one_username_only(client, settings, technician, qp):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        login(client, "tech", "wrong-password", ip="10.9.9.9")
    locked = login(client, "tech", PASSWORD, ip="10.9.9.9")
    assert locked.status_code == 429
    assert "Account locked" in locked.content.decode()
    # Another technician on the same cleanroom terminal still logs in.
    assert login(client, "qp", PASSWORD, ip="10.9.9.9").status_code == 302


def test_lockout_is_recorded_in_the_audit_trail(client, settings, technician):
    from carmfg.audit.models import Action, AuditEvent

    for _ in range(settings.AXES_FAILURE_LIMIT):
        login(client, "tech", "wrong-password", ip="10.9.9.8")
    assert AuditEvent.objects.filter(action=Action.LOGIN_FAILED, actor_username="tech").count() == settings.AXES_FAILURE_LIMIT
    assert AuditEvent.objects.filter(action=Action.LOCKED_OUT, actor_username="tech").exists()


def test_login_form_refuses_nul_bytes_without_a_500(client, technician):
    response = login(client, "te\x00ch", "x\x00")
    assert response.status_code in (200, 400)


# --- Sessions ------------------------------------------------------------------------


def test_session_expires_after_the_idle_timeout(client, settings, technician):
    assert settings.SESSION_COOKIE_AGE == 15 * 60
    assert settings.SESSION_SAVE_EVERY_REQUEST  # the timeout slides with activity
    login(client, "tech", PASSWORD)
    assert client.get("/").status_code == 200
    Session.objects.update(expire_date=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_activity_extends_the_session(client, technician):
    login(client, "tech", PASSWORD)
    Session.objects.update(expire_date=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30))
    client.get("/")
    remaining = Session.objects.get().expire_date - dt.datetime.now(dt.UTC)
    assert remaining > dt.timedelta(minutes=14)


# --- Settings ------------------------------------------------------------------------------


def _django_check(env: dict[str, str]) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "DEBUG"))}
    return subprocess.run(
        [sys.executable, "-c", "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE','carmfg.settings'); django.setup()"],
        env={**base, **env}, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )


SAFE_PRODUCTION = {
    "CARMFG_ENV": "production",
    "SECRET_KEY": "k" * 64,
    "DATABASE_URL": "postgres://carmfg:pw@db.invalid:5432/carmfg",
    "REDIS_URL": "redis://redis.invalid:6379/0",
    "ALLOWED_HOSTS": "carmfg.hospital.invalid",
}


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"SECRET_KEY": ""}, "SECRET_KEY"),
        ({"SECRET_KEY": "short"}, "SECRET_KEY"),
        ({"DEBUG": "true"}, "DEBUG"),
        ({"DATABASE_URL": "sqlite:///x.sqlite3"}, "PostgreSQL"),
        ({"REDIS_URL": ""}, "REDIS_URL"),
        ({"ALLOWED_HOSTS": "*"}, "ALLOWED_HOSTS"),
    ],
)
def test_production_refuses_to_start_with_an_unsafe_configuration(override, message):
    result = _django_check({**SAFE_PRODUCTION, **override})
    assert result.returncode != 0
    assert "Refusing to start in production" in result.stderr
    assert message in result.stderr


def test_production_starts_with_a_safe_configuration():
    result = _django_check(SAFE_PRODUCTION)
    assert result.returncode == 0, result.stderr


def test_secrets_can_come_from_files(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("f" * 64 + "\n")
    env = {**SAFE_PRODUCTION, "SECRET_KEY": "", "SECRET_KEY_FILE": str(secret)}
    env.pop("SECRET_KEY")
    result = _django_check(env)
    assert result.returncode == 0, result.stderr
