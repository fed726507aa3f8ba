"""Free text from users: NUL bytes, 1 MB strings, right-to-left and combining characters,
HTML and script in names. Each is stored safely or refused with a clear message (never a
500), and whatever is stored is shown escaped."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batches.models import Deviation, Patient

NASTY = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "\x00",
    "\u202eKCOL\u202c",  # right-to-left override
    "שלום עולם",  # Hebrew, right to left
    "e\u0301\u0301\u0301\u0301",  # stacked combining accents
    "{{ request }}{% csrf_token %}",
    "'; DROP TABLE batches_batch;--",
    "\u200b\ufeff",  # zero-width characters
]
free_text = st.lists(st.one_of(st.sampled_from(NASTY), st.text(max_size=30)), min_size=1, max_size=4).map("".join)
RAW_MARKUP = ("<script>alert(1)</script>", "<img src=x onerror=alert(1)>")

FAST = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _assert_escaped(html: str) -> None:
    for raw in RAW_MARKUP:
        assert raw not in html, f"unescaped user text in the page: {raw}"


@FAST
@given(title=free_text, description=free_text)
def test_a_deviation_with_any_text_is_stored_safely_or_refused_with_a_message(client_for, technician, title,
                                                                                description):
    client = client_for(technician)
    before = Deviation.objects.count()
    response = client.post("/batches/deviations/new/", {
        "classification": "minor", "title": title, "description": description, "batch": ""})
    assert response.status_code < 500
    if response.status_code == 302:
        assert Deviation.objects.count() == before + 1
        stored = Deviation.objects.latest("pk")
        assert "\x00" not in stored.title + stored.description
        page = client.get(response["Location"])
        assert page.status_code == 200
        _assert_escaped(page.content.decode())
    else:
        assert Deviation.objects.count() == before  # refused: nothing stored
        _assert_escaped(response.content.decode())
        if "\x00" in title + description:
            assert "Null characters are not allowed" in response.content.decode() or "NUL" in response.content.decode()


@FAST
@given(initials=st.one_of(st.sampled_from(["AB", "A.B."]), free_text), record_number=free_text)
def test_a_patient_with_any_initials_and_record_number_is_stored_safely_or_refused(client_for, coordinator,
                                                                                   initials, record_number):
    client = client_for(coordinator)
    before = Patient.objects.count()
    response = client.post("/batches/patients/new/", {
        "initials": initials, "birth_year": "1970", "hospital_record_number": record_number,
        "wristband_code": "WB12345678", "weight_kg": "70.0", "weight_measured_on": dt.datetime.now(dt.UTC).date().isoformat(),
    })
    assert response.status_code < 500
    _assert_escaped(response.content.decode())
    if response.status_code == 302:
        page = client.get(response["Location"])
        assert page.status_code == 200
        _assert_escaped(page.content.decode())
        listing = client.get("/batches/patients/")
        _assert_escaped(listing.content.decode())
    else:
        assert Patient.objects.count() == before


@pytest.mark.parametrize("field", ["title", "description"])
def test_a_one_megabyte_deviation_text_is_refused_with_a_message_not_a_500(client_for, technician, field):
    values = {"classification": "minor", "title": "Spill", "description": "Spill in the BSC", "batch": ""}
    values[field] = "x" * (1024 * 1024)
    response = client_for(technician).post("/batches/deviations/new/", values)
    assert response.status_code == 400
    assert "at most" in response.content.decode()
    assert not Deviation.objects.exists()


def test_markup_in_a_deviation_title_is_shown_as_text(client_for, technician):
    client = client_for(technician)
    response = client.post("/batches/deviations/new/", {
        "classification": "minor", "title": "<script>alert(1)</script>", "description": "<b>bold?</b>", "batch": ""})
    assert response.status_code == 302
    html = client.get(response["Location"]).content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<b>bold?</b>" not in html


@pytest.fixture
def patient_and_product(site, coordinator):
    from batches.models import Product, RegulatoryPathway
    from tests.batches.coi_steps import a_patient

    product = Product.objects.create(site=site, code="cd19", name="Anti-CD19 CAR-T",
                                     pathway=RegulatoryPathway.HOSPITAL_EXEMPTION, product_code="S0001")
    return a_patient(coordinator, site), product


@FAST
@given(indication=free_text, physician=free_text)
def test_an_order_with_any_indication_and_physician_is_stored_safely_or_refused(client_for, coordinator,
                                                                                patient_and_product,
                                                                                indication, physician):
    from batches.models import Order

    patient, product = patient_and_product
    client = client_for(coordinator)
    before = Order.objects.count()
    response = client.post(f"/batches/patients/{patient.pk}/orders/new/", {
        "product": product.pk, "indication": indication, "treating_physician": physician,
        "target_dose_cells_per_kg": "1000000", "planned_collection_date": dt.datetime.now(dt.UTC).date().isoformat(),
    })
    assert response.status_code < 500
    _assert_escaped(response.content.decode())
    if response.status_code == 302:
        stored = Order.objects.latest("pk")
        assert "\x00" not in stored.indication + stored.treating_physician
        page = client.get(response["Location"])
        assert page.status_code == 200
        _assert_escaped(page.content.decode())
    else:
        assert Order.objects.count() == before
