"""The one pager of every list (templates/partials/pager.html): its links keep the list's
filters and change only the page; the current page is marked for screen readers."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from html import unescape

import pytest

from batches.models import Patient

pytestmark = pytest.mark.django_db


def _patients(site, initials: str, count: int, start: int) -> None:
    Patient.objects.bulk_create(
        Patient(site=site, pseudonym=f"PT-P{n:04d}", initials=initials, birth_year=1970, hospital_record_number=f"HP{n}",
                wristband_code=f"WP{n:06d}", weight_kg=Decimal("70.0"), weight_measured_on=dt.date(2026, 1, 5))
        for n in range(start, start + count))


def _pager(html: str) -> str:
    [nav] = re.findall(r'<nav class="pager".*?</nav>', html, re.S)
    return unescape(nav)


def test_the_pager_keeps_the_search_and_marks_the_current_page(client_for, coordinator, site):
    _patients(site, "ZZ", 60, start=1)   # 60 match: two pages of 50
    _patients(site, "AA", 70, start=100)  # filtered out: would make three pages
    client = client_for(coordinator)

    first = client.get("/batches/patients/", {"q": "ZZ"}).content.decode()
    nav = _pager(first)

    assert 'aria-label="Pages"' in nav
    assert 'rel="next" href="?q=ZZ&page=2"' in nav
    assert re.search(r'<a class="pager-page" aria-current="page" href="\?q=ZZ&page=1">.*?1</a>', nav)
    assert "Page 1 of 2" in nav
    assert "page=3" not in nav
    assert 'rel="prev"' not in nav

    second = client.get("/batches/patients/", {"q": "ZZ", "page": "2"}).content.decode()
    nav = _pager(second)
    assert 'rel="prev" href="?q=ZZ&page=1"' in nav
    assert re.search(r'aria-current="page" href="\?q=ZZ&page=2"', nav)
    assert 'rel="next"' not in nav
    shown = re.findall(r"PT-P\d{4}", second)
    assert len(shown) == 10
    assert all(int(p[4:]) < 100 for p in shown)  # only patients that match the search


def test_a_list_of_one_page_has_no_pager(client_for, coordinator, site):
    _patients(site, "ZZ", 3, start=1)

    html = client_for(coordinator).get("/batches/patients/").content.decode()

    assert 'class="pager"' not in html
