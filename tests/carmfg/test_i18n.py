"""Languages: English and Russian, chosen by each user in their profile (issue #11).

The Russian catalogue must translate every string the code and templates mark for
translation; the check extracts the strings afresh, as ``scripts/messages.sh update``
would, so a string added without its translation fails here.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.template import Context, Template
from django.utils import translation

from carmfg.accounts.models import Profile
from carmfg.accounts.services import profile_language_set
from carmfg.audit.models import Action, AuditEvent
from carmfg.exceptions import InvalidInput

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = ROOT / "locale" / "ru" / "LC_MESSAGES" / "django.po"
# What `scripts/messages.sh update` reads: the code and the templates.
SOURCES = ["manage.py", "carmfg", "batches", "qc", "templates", "locale", "scripts"]


def _gettext_tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} not found: install the Debian package gettext (make test does)"
    return path


@pytest.fixture(scope="module", autouse=True)
def _compiled_catalogue():
    """The site reads the compiled .mo; make test and make run compile it, a bare pytest may not have."""
    mo = CATALOGUE.with_suffix(".mo")
    if not mo.exists() or mo.stat().st_mtime < CATALOGUE.stat().st_mtime:
        subprocess.run(
            [_gettext_tool("msgfmt"), "--check", "-o", str(mo), str(CATALOGUE)], check=True, capture_output=True
        )
        translation.trans_real._translations = {}  # type: ignore[attr-defined]
        translation.trans_real._default = None  # type: ignore[attr-defined]


def _msgids(po_text: str) -> list[str]:
    return [m for m in re.findall(r'^msgid "(.*)"$', po_text, flags=re.MULTILINE) if m]


def test_every_marked_string_has_a_russian_translation(tmp_path):
    tree = tmp_path / "tree"
    for name in SOURCES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, tree / name, ignore=shutil.ignore_patterns("__pycache__", "*.mo"))
        else:
            tree.mkdir(exist_ok=True)
            shutil.copy2(source, tree / name)
    env = {"PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin", "PYTHON": sys.executable,
           "CARMFG_VAR_DIR": str(tmp_path / "var"), "CARMFG_ENV": "test"}
    extracted = subprocess.run(["bash", "scripts/messages.sh", "update"], cwd=tree, env=env,
                               capture_output=True, text=True, check=False)
    assert extracted.returncode == 0, extracted.stderr
    po = tree / "locale" / "ru" / "LC_MESSAGES" / "django.po"
    msgattrib = _gettext_tool("msgattrib")
    untranslated = subprocess.run([msgattrib, "--untranslated", "--no-wrap", "--no-obsolete", str(po)],
                                  capture_output=True, text=True, check=True).stdout
    fuzzy = subprocess.run([msgattrib, "--only-fuzzy", "--no-wrap", "--no-obsolete", str(po)],
                           capture_output=True, text=True, check=True).stdout
    missing = _msgids(untranslated) + _msgids(fuzzy)
    assert not missing, (
        f"{len(missing)} string(s) have no Russian translation (run `bash scripts/messages.sh update`, "
        "translate them in locale/ru/LC_MESSAGES/django.po):\n" + "\n".join(missing)
    )


def test_russian_catalogue_keeps_every_placeholder():
    # msgfmt --check: a translation that drops or renames %(name)s would fail at run time.
    checked = subprocess.run([_gettext_tool("msgfmt"), "--check", "-o", "/dev/null", str(CATALOGUE)],
                             capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stderr


def test_a_user_who_chose_russian_gets_russian_pages_after_login(client, technician):
    profile_language_set(actor=technician, language="ru")
    client.force_login(technician, backend="django.contrib.auth.backends.ModelBackend")
    page = client.get("/").content.decode()
    assert '<html lang="ru">' in page
    assert "Перейти к содержимому" in page
    assert "Skip to content" not in page


def test_choosing_russian_in_the_profile_is_audited_and_applies_at_once(client_for, technician):
    client = client_for(technician)
    assert "Log out" in client.get("/accounts/profile/").content.decode()
    response = client.post("/accounts/profile/", {"language": "ru"}, follow=True)
    page = response.content.decode()
    assert "Профиль" in page
    assert "Ваш язык сохранён." in page
    assert client.cookies[settings.LANGUAGE_COOKIE_NAME].value == "ru"  # the login page after logout too
    event = AuditEvent.objects.filter(action=Action.UPDATE, object_type="accounts.profile").get()
    assert event.actor == technician
    assert event.changes == {"language": {"old": "", "new": "ru"}}


def test_the_profile_language_beats_the_browsers(client_for, technician):
    profile_language_set(actor=technician, language="en")
    client = client_for(technician)
    page = client.get("/", HTTP_ACCEPT_LANGUAGE="ru").content.decode()
    assert "Log out" in page


def test_without_a_choice_the_browsers_language_is_used(client_for, technician):
    page = client_for(technician).get("/", HTTP_ACCEPT_LANGUAGE="ru-RU,ru;q=0.9").content.decode()
    assert "Выйти" in page


def test_going_back_to_the_browsers_language_forgets_the_choice(client_for, technician):
    client = client_for(technician)
    client.post("/accounts/profile/", {"language": "ru"})
    client.post("/accounts/profile/", {"language": ""})
    assert Profile.objects.get(user=technician).language == ""
    assert "Log out" in client.get("/", HTTP_ACCEPT_LANGUAGE="en").content.decode()


def test_an_unknown_language_is_refused_and_nothing_changes(client_for, technician):
    client = client_for(technician)
    response = client.post("/accounts/profile/", {"language": "xx"})
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert not Profile.objects.filter(user=technician, language="xx").exists()
    assert not AuditEvent.objects.filter(object_type="accounts.profile").exists()
    with pytest.raises(InvalidInput):
        profile_language_set(actor=technician, language="xx")


def test_numbers_and_dates_follow_the_language():
    template = Template('{{ volume }} | {{ day|date:"DATE_FORMAT" }}')
    context = Context({"volume": Decimal("12.5"), "day": dt.date(2026, 11, 23)})
    with translation.override("ru"):
        assert template.render(context) == "12,5 | 23 ноября 2026 г."
    with translation.override("en"):
        assert template.render(context) == "12.5 | Nov. 23, 2026"


def test_recorded_values_show_the_languages_decimal_separator_but_stay_neutral_in_data():
    from batches.quantities import format_value

    template = Template("{% load execution_tags %}{{ count|qty }} · {{ volume|qty:1 }}")
    context = Context({"count": Decimal("1200000000"), "volume": Decimal("72.5")})
    with translation.override("ru"):
        assert template.render(context) == "1,20 × 10⁹ · 72,5"
        assert format_value(Decimal("72.5")) == "72.5"  # what signatures and audit events carry
    with translation.override("en"):
        assert template.render(context) == "1.20 × 10⁹ · 72.5"


def test_stored_choice_labels_stay_english_and_pages_translate_them():
    from batches.models import BatchState

    with translation.override("ru"):
        assert BatchState.IN_PROCESS.label == "In process"
        page = Template("{% load i18n %}{% translate state %}").render(Context({"state": BatchState.IN_PROCESS.label}))
    assert page == "В производстве"
