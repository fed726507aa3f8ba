"""The UI shell: base layout, navigation, site switcher and the home page per role."""

from __future__ import annotations

import re

import pytest
from django.db import connection, transaction
from django.http import HttpResponse
from django.test.utils import CaptureQueriesContext
from django.urls import include, path

from carmfg.accounts.context_processors import site_context
from carmfg.accounts.middleware import SESSION_KEY
from carmfg.accounts.models import Role
from carmfg.accounts.services import membership_set_roles, user_create
from carmfg.audit.models import Action, AuditEvent
from carmfg.audit.services import audit_record
from carmfg.urls import urlpatterns as project_urlpatterns
from tests.conftest import PASSWORD, assert_hidden

# 16 for the shell and the core panels, + 2 for the QP's release queue and alerts, + 3 for
# the vein-to-vein summary (its batches, and the stage of those in process) (qc panels).
HOME_QUERY_BUDGET = 21


def _panels(response) -> set[str]:
    return set(re.findall(r'<section class="card panel[^"]*" id="panel-([a-z_]+)"', response.content.decode()))


def _nav_links(response) -> dict[str, str]:
    html = response.content.decode()
    nav = html[html.index('<nav class="mainnav"') : html.index("</nav>")]
    return dict(re.findall(r'<a href="([^"]+)"[^>]*>([^<]+)</a>', nav))


def _record_events(site, count: int, label: str) -> None:
    with transaction.atomic():
        for n in range(count):
            audit_record(actor=None, action=Action.CREATE, site=site, object_type="test.thing",
                         object_id=str(n), object_repr=f"{label} {n:02d}")


# --- home page: the right panels for each role, and nobody else's ----------------------


def test_technician_home_shows_next_steps_and_the_account_panel(technician, client_for):
    response = client_for(technician).get("/")

    assert response.status_code == 200
    assert _panels(response) == {"open_steps", "account"}


@pytest.mark.parametrize("persona", ["qp", "auditor"])
def test_reviewers_home_shows_audit_search_and_latest_events_but_not_people(persona, request, client_for):
    user = request.getfixturevalue(persona)

    response = client_for(user).get("/")

    qp_only = {"open_deviations", "release_queue", "vein_to_vein"} if persona == "qp" else set()
    assert _panels(response) == {"audit_search", "audit_latest", "account"} | qp_only
    html = response.content.decode()
    assert 'action="/audit/"' in html
    assert 'method="get"' in html
    for field in ('name="username"', 'name="action"', 'name="date_from"', 'name="date_to"'):
        assert field in html


def test_site_admin_home_shows_people_and_roles_with_link_to_site_detail(site, site_admin, technician, client_for):
    response = client_for(site_admin).get("/")

    assert _panels(response) == {"site_people", "vein_to_vein", "account"}
    html = response.content.decode()
    assert f'href="/accounts/sites/{site.pk}/"' in html
    assert "Irina Sokolova" in html  # the technician, with her role
    assert "Technician" in html


def test_latest_events_panel_shows_ten_newest_events_of_the_current_site_only(site, other_site, auditor, client_for):
    _record_events(site, 12, "home-site event")
    _record_events(other_site, 3, "away-site event")

    html = client_for(auditor).get("/").content.decode()

    latest = html[html.index('id="panel-audit_latest"') :]
    latest = latest[: latest.index("</section>")]
    shown = re.findall(r"home-site event (\d\d)", latest)
    assert shown == [f"{n:02d}" for n in range(11, 1, -1)]  # newest first, ten of them
    assert "away-site event" not in html


def test_account_panel_shows_roles_here_and_the_login_before_this_one(site, technician, client):
    client.post("/accounts/login/", {"username": "tech", "password": PASSWORD})
    client.post("/accounts/logout/")
    response = client.post("/accounts/login/", {"username": "tech", "password": PASSWORD})
    assert response.status_code == 302

    html = client.get("/").content.decode()

    account = html[html.index('id="panel-account"') :]
    assert "Technician" in account
    assert "Previous login" in account
    assert "none recorded" not in account
    assert 'href="/accounts/password/"' in account


def test_user_of_another_site_sees_none_of_this_sites_events_or_people(site, auditor, other_site_user, client_for):
    _record_events(site, 2, "home-site event")

    html = client_for(other_site_user).get("/").content.decode()

    assert "home-site event" not in html
    assert "Mark Stein" not in html  # the auditor of ``site``
    assert site.name not in html


# --- users without any role -----------------------------------------------------------------


def test_user_with_no_role_anywhere_sees_a_clear_message_and_no_records(site, client_for):
    _record_events(site, 2, "home-site event")
    nobody = user_create(actor=None, username="nobody", full_name="No Body", email="n@test.invalid", password=PASSWORD)
    client = client_for(nobody)

    response = client.get("/")

    html = response.content.decode()
    assert response.status_code == 200
    assert "You hold no role at any site" in html
    assert _panels(response) == set()
    assert _nav_links(response) == {"/": "Home"}
    assert "home-site event" not in html
    assert site.name not in html
    assert_hidden(client, "/audit/", methods=("get",))


# --- navigation -----------------------------------------------------------------------------


def test_audit_nav_link_is_hidden_for_a_technician(technician, client_for):
    links = _nav_links(client_for(technician).get("/"))

    assert "/audit/" not in links
    assert "Audit trail" not in links.values()


@pytest.mark.parametrize("persona", ["qp", "auditor"])
def test_audit_nav_link_is_shown_to_holders_of_view_audit_trail(persona, request, client_for):
    links = _nav_links(client_for(request.getfixturevalue(persona)).get("/"))

    assert links.get("/audit/") == "Audit trail"


def test_nav_hides_batches_qc_and_release_while_their_pages_do_not_exist(auditor, client_for):
    from django.urls import NoReverseMatch, reverse

    links = _nav_links(client_for(auditor).get("/"))

    existing = set()
    for name in ("batches:order_list", "batches:index", "qc:index", "qc:release"):
        try:
            existing.add(reverse(name))
        except NoReverseMatch:
            continue
    assert set(links) == {"/", "/audit/"} | existing


def _input(html: str, field_id: str) -> str:
    match = re.search(rf'<input[^>]*id="{field_id}"[^>]*>', html)
    assert match, f"no input #{field_id}"
    return match.group(0)


def _page(request):
    return HttpResponse("domain page")


# A project with the domain apps' index pages, to show the links appear once they resolve.
urlpatterns = [
    *(p for p in project_urlpatterns if str(getattr(p, "pattern", "")) not in {"batches/", "qc/"}),
    path("batches/", include(([path("", _page, name="index")], "batches"))),
    path("qc/", include(([path("", _page, name="index"), path("release/", _page, name="release")], "qc"))),
]


def test_nav_links_domain_pages_once_they_resolve(settings, technician, client_for):
    settings.ROOT_URLCONF = __name__

    links = _nav_links(client_for(technician).get("/"))

    assert links == {"/": "Home", "/batches/": "Batches", "/qc/": "QC", "/qc/release/": "Release"}


def test_nav_marks_release_not_qc_as_current_under_the_release_pages(settings, site, technician, rf):
    settings.ROOT_URLCONF = __name__
    request = rf.get("/qc/release/42/")
    request.user, request.site = technician, site

    current = {item.key: item.current for item in site_context(request)["main_nav"]}

    assert current == {"batches": False, "qc": False, "release": True}


# --- top bar and site switcher ----------------------------------------------------------------


def test_top_bar_shows_site_fin_time_zone_full_name_and_roles(site, verifier, client_for):
    html = client_for(verifier).get("/").content.decode()

    topbar = html[html.index('<header class="topbar">') : html.index("</header>")]
    assert site.name in topbar
    assert "W0001" in topbar
    assert "Europe/Moscow" in topbar
    assert "Pavel Orlov" in topbar
    assert "Technician" in topbar
    assert "Verifier" in topbar


def test_site_switcher_is_absent_for_a_single_site_user(technician, client_for):
    html = client_for(technician).get("/").content.decode()

    assert 'id="site-switch"' not in html


def test_site_switcher_lists_every_site_of_a_multi_site_user(site, other_site, auditor, client_for):
    membership_set_roles(actor=None, user=auditor, site=other_site, roles=[Role.AUDITOR])

    html = client_for(auditor).get("/").content.decode()

    assert 'id="site-switch"' in html
    switcher = html[html.index('id="site-switch"') : html.index("</select>")]
    assert site.name in switcher
    assert other_site.name in switcher


def test_switching_site_changes_the_site_and_says_so_in_the_live_region(site, other_site, auditor, client_for):
    membership_set_roles(actor=None, user=auditor, site=other_site, roles=[Role.AUDITOR])
    client = client_for(auditor)

    response = client.post("/accounts/site/", {"site": other_site.pk, "next": "/"}, follow=True)

    assert client.session[SESSION_KEY] == other_site.pk
    html = response.content.decode()
    live = html[html.index('<div id="messages"') : html.index('<div class="page-head">')]
    assert 'aria-live="polite"' in live
    assert f"You are now working at {other_site.name}" in live


def test_switching_to_a_site_without_a_role_is_404_and_changes_nothing(site, other_site, technician, client_for):
    client = client_for(technician)
    client.get("/")
    session_before = client.session.get(SESSION_KEY)
    switches_before = AuditEvent.objects.filter(action=Action.SITE_SWITCH).count()

    response = client.post("/accounts/site/", {"site": other_site.pk, "next": "/"})

    assert response.status_code == 404
    assert client.session.get(SESSION_KEY) == session_before
    assert AuditEvent.objects.filter(action=Action.SITE_SWITCH).count() == switches_before
    html = client.get("/").content.decode()
    assert site.name in html
    assert other_site.name not in html


# --- forms ------------------------------------------------------------------------------------


def test_login_form_autofocuses_the_first_field_and_labels_every_field(client):
    html = client.get("/accounts/login/").content.decode()

    username = _input(html, "id_username")
    assert "autofocus" in username
    assert '<label for="id_username">' in html
    assert '<label for="id_password">' in html


def test_form_errors_sit_next_to_their_field_and_are_referenced_by_it(technician, client_for):
    response = client_for(technician).post(
        "/accounts/password/",
        {"old_password": PASSWORD, "new_password1": "a-long-new-pass-77", "new_password2": "something-else-77"},
    )

    html = response.content.decode()
    field = _input(html, "id_new_password2")
    assert 'aria-invalid="true"' in field
    assert "id_new_password2_error" in field
    assert 'id="id_new_password2_error"' in html
    assert 'role="alert"' in html  # the summary, announced once


# --- query count --------------------------------------------------------------------------------


def _home_queries(client) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get("/").status_code == 200
    return len(ctx.captured_queries)


@pytest.mark.parametrize("persona", ["technician", "qp", "auditor", "site_admin"])
def test_home_query_count_is_bounded_and_does_not_grow_with_people_at_the_site(
    persona, request, site, make_user, client_for, django_assert_max_num_queries
):
    user = request.getfixturevalue(persona)
    client = client_for(user)
    client.get("/")  # warm the session
    with django_assert_max_num_queries(HOME_QUERY_BUDGET):
        client.get("/")
    with_one = _home_queries(client)

    for n in range(19):
        make_user(f"colleague{n}", roles=[Role.TECHNICIAN, Role.VERIFIER], site=site)
    _record_events(site, 15, "event")

    assert _home_queries(client) == with_one
