"""Security settings, checked: Django's deployment checks, CSRF on every form, secure
cookies and HSTS in production, the Content Security Policy, clickjacking protection,
upload limits and password validators. (Lockout by user + IP and the idle session
timeout are tested in test_accounts.py.)"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import NoReverseMatch, reverse

from tests.carmfg import authz_expectations as ex
from tests.carmfg.authz_matrix import discover_routes

ROOT = Path(__file__).resolve().parents[2]


def production_env() -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "DEBUG"))}
    return {
        **base,
        "CARMFG_ENV": "production",
        "SECRET_KEY": secrets.token_urlsafe(64),
        "DATABASE_URL": "postgres://carmfg:pw@db.invalid:5432/carmfg",
        "REDIS_URL": "redis://redis.invalid:6379/0",
        "ALLOWED_HOSTS": "carmfg.hospital.invalid",
    }


def test_check_deploy_is_clean_under_the_production_settings():
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        env=production_env(), cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


PRODUCTION_SETTINGS = [
    "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SECURE_HSTS_SECONDS", "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_SSL_REDIRECT", "SECURE_CONTENT_TYPE_NOSNIFF", "X_FRAME_OPTIONS", "SESSION_COOKIE_HTTPONLY",
    "SESSION_COOKIE_AGE", "SESSION_EXPIRE_AT_BROWSER_CLOSE", "DEBUG",
]


@pytest.fixture(scope="module")
def production_settings() -> dict:
    code = (
        "import json, django; django.setup(); from django.conf import settings as s; "
        f"print(json.dumps({{n: getattr(s, n) for n in {PRODUCTION_SETTINGS!r}}}))"
    )
    result = subprocess.run([sys.executable, "-c", code], env={**production_env(), "DJANGO_SETTINGS_MODULE": "carmfg.settings"},
                            cwd=ROOT, capture_output=True, text=True, timeout=60, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_production_cookies_are_secure_and_hsts_is_a_year_with_subdomains(production_settings):
    assert production_settings["SESSION_COOKIE_SECURE"] is True
    assert production_settings["CSRF_COOKIE_SECURE"] is True
    assert production_settings["SESSION_COOKIE_HTTPONLY"] is True
    assert production_settings["SECURE_HSTS_SECONDS"] >= 31_536_000
    assert production_settings["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is True
    assert production_settings["SECURE_SSL_REDIRECT"] is True
    assert production_settings["SECURE_CONTENT_TYPE_NOSNIFF"] is True
    assert production_settings["DEBUG"] is False


def test_production_sessions_end_after_fifteen_idle_minutes_and_with_the_browser(production_settings):
    assert production_settings["SESSION_COOKIE_AGE"] == 15 * 60
    assert production_settings["SESSION_EXPIRE_AT_BROWSER_CLOSE"] is True


# --- headers on every page -------------------------------------------------------------------------


def test_pages_forbid_framing_and_carry_a_strict_content_security_policy(client_for, technician):
    response = client_for(technician).get("/")
    assert response.status_code == 200
    assert response["X-Frame-Options"] == "DENY"
    policy = {d.split()[0]: d.split()[1:] for d in response["Content-Security-Policy"].split("; ")}
    assert policy["default-src"] == ["'self'"]
    assert policy["script-src"] == ["'self'"]  # no inline script, no other origin
    assert policy["style-src-elem"] == ["'self'"]
    assert policy["object-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert "'unsafe-inline'" not in policy["script-src"] + policy["style-src"]


def test_the_login_page_has_the_policy_too(client):
    response = client.get("/accounts/login/")
    assert "script-src 'self'" in response["Content-Security-Policy"]
    assert response["X-Frame-Options"] == "DENY"


TEMPLATES = ROOT / "templates"


def test_no_template_of_a_page_holds_inline_script_or_a_style_element():
    """PDF templates (templates/documents/) are rendered by WeasyPrint, not a browser."""
    offenders = []
    for template in TEMPLATES.rglob("*.html"):
        if "documents" in template.relative_to(TEMPLATES).parts:
            continue
        text = template.read_text()
        for bad in ("<style", "javascript:", " onclick=", " onload=", " onchange=", " onsubmit=", "hx-on"):
            if bad in text:
                offenders.append(f"{template.relative_to(ROOT)}: {bad.strip()}")
        for line in text.splitlines():
            if "<script" in line and "src=" not in line:
                offenders.append(f"{template.relative_to(ROOT)}: inline <script>")
    assert not offenders, offenders


# --- CSRF ------------------------------------------------------------------------------------------

KWARG_VALUES = {"app_label": "auth", "fmt": "csv", "format": "json"}


def _any_url(route) -> str | None:
    kwargs = {k: KWARG_VALUES.get(k, "1") for k in route.kwarg_names}
    try:
        return reverse(route.name, kwargs=kwargs)
    except NoReverseMatch:
        return None


def test_every_post_route_refuses_a_post_without_the_csrf_token(site_admin):
    """Signed in (session cookie) but without the token: 403 before any view runs, on
    every route of the resolver, pages and API (DRF's session authentication checks
    CSRF too). Only the health check, which changes nothing, is exempt."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(site_admin, backend="django.contrib.auth.backends.ModelBackend")
    exempt = {"healthz"}
    unprotected = []
    checked = 0
    for route in discover_routes():
        if not route.name or ex.is_ignored(route.name, route.pattern) or route.name in exempt:
            continue
        if "post" not in route.methods() and route.is_api:
            continue
        url = _any_url(route)
        assert url is not None, f"cannot build a URL for {route.name}"
        response = client.post(url, {"anything": "x"})
        checked += 1
        if response.status_code not in (403, 405):
            unprotected.append(f"{route.name} {url}: {response.status_code}")
        elif response.status_code == 403 and route.is_api is False:
            assert b"CSRF" in response.content or b"Forbidden" in response.content, url
    assert checked > 80
    assert not unprotected, f"POST without a CSRF token was not refused: {unprotected}"


def test_the_health_check_changes_nothing_so_it_needs_no_token(client):
    assert Client(enforce_csrf_checks=True).post("/healthz").status_code in (200, 403)


def test_a_post_with_the_token_gets_through_csrf(site_admin):
    client = Client(enforce_csrf_checks=True)
    client.force_login(site_admin, backend="django.contrib.auth.backends.ModelBackend")
    page = client.get("/accounts/tokens/")
    token = page.cookies.get(django_settings.CSRF_COOKIE_NAME) or client.cookies.get(django_settings.CSRF_COOKIE_NAME)
    assert token is not None
    response = client.post("/accounts/tokens/", {"csrfmiddlewaretoken": token.value, "name": ""})
    assert response.status_code != 403


# --- upload limits ---------------------------------------------------------------------------------


def test_request_bodies_and_in_memory_uploads_are_limited():
    assert django_settings.DATA_UPLOAD_MAX_MEMORY_SIZE <= 5 * 1024 * 1024
    assert django_settings.FILE_UPLOAD_MAX_MEMORY_SIZE <= 5 * 1024 * 1024
    assert django_settings.DATA_UPLOAD_MAX_NUMBER_FIELDS <= 5000


def test_an_oversized_form_body_is_a_400_not_a_500(client_for, technician):
    too_big = "x" * (django_settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)
    response = client_for(technician).post("/batches/deviations/new/", {"description": too_big})
    assert response.status_code == 400


def test_the_record_verification_page_refuses_a_file_over_its_limit_with_a_message(client_for, auditor, settings):
    """Regression: an upload over the page's own limit was a 500 (a message added to an unbound form)."""
    settings.CARMFG_VERIFY_UPLOAD_MAX_MB = 1
    big = SimpleUploadedFile("record.pdf", b"%PDF-1.7\n" + b"0" * (1024 * 1024 + 200 * 1024), content_type="application/pdf")
    response = client_for(auditor).post("/qc/records/verify/", {"file": big})
    assert response.status_code == 200  # the page again, with the reason
    assert "The upload is larger than 1 MB." in response.content.decode()


# --- passwords -------------------------------------------------------------------------------------


def test_passwords_are_validated_for_length_commonness_digits_and_likeness_to_the_user():
    validators: list[Any] = list(django_settings.AUTH_PASSWORD_VALIDATORS)
    names = {v["NAME"].rsplit(".", 1)[-1]: v for v in validators}
    assert set(names) >= {"UserAttributeSimilarityValidator", "MinimumLengthValidator", "CommonPasswordValidator",
                          "NumericPasswordValidator"}
    assert names["MinimumLengthValidator"]["OPTIONS"]["min_length"] >= 12


def test_a_weak_new_password_is_refused_with_the_reasons(client_for, technician):
    from tests.conftest import PASSWORD

    response = client_for(technician).post("/accounts/password/", {
        "old_password": PASSWORD, "new_password1": "password", "new_password2": "password"})
    assert response.status_code == 200
    text = response.content.decode()
    assert "too short" in text
    assert "too common" in text


@pytest.mark.parametrize(("env", "backend"), [
    ("demo", "django.core.mail.backends.filebased.EmailBackend"),
    ("production", "django.core.mail.backends.smtp.EmailBackend"),
])
def test_the_demo_writes_mail_to_files_and_production_sends_it(env, backend, tmp_path):
    """`make run` prints the demo logins from seed_demo's output: mail printed to the
    console would land in that banner."""
    environment = {**production_env(), "CARMFG_ENV": env, "CARMFG_VAR_DIR": str(tmp_path)}
    if env == "demo":
        for name in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY"):
            environment.pop(name)
    code = "import django; django.setup(); from django.conf import settings as s; print(s.EMAIL_BACKEND, s.EMAIL_FILE_PATH)"
    result = subprocess.run([sys.executable, "-c", code], env={**environment, "DJANGO_SETTINGS_MODULE": "carmfg.settings"},
                            cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [backend, str(tmp_path / "mail")]
