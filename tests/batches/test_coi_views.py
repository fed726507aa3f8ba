"""Pages of the chain of identity: site isolation, roles, input that cannot break them,
bounded queries, the labels PDF and the vein-to-vein timeline."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from batches.exceptions import IdentityMismatch
from batches.models import ContainerType, CustodyStep, Label, LabelStatus, Patient
from batches.services.custody import custody_scan
from batches.services.labels import labels_print
from batches.services.patients import site_today
from carmfg.audit.models import Action, AuditEvent
from tests.batches.coi_steps import a_batch, a_collection, a_patient, an_order, din_of, scan_of
from tests.batches.test_labels import scan_pages
from tests.conftest import assert_hidden


@pytest.fixture
def chain(site, coordinator, technician, product, small_mbr):
    """One patient's whole chain at ``site``: order, DIN, labels, intake, batch."""
    patient = a_patient(coordinator, site)
    batch = a_batch(coordinator, technician, patient, product)
    donation = batch.donation
    label = Label.objects.get(donation=donation, container_code="AB-1")
    return {"patient": patient, "order": batch.order, "donation": donation, "label": label,
            "intake": donation.intake, "batch": batch}


def _urls(chain) -> list[str]:
    p, o, d, lb, i, b = (chain[k].pk for k in ("patient", "order", "donation", "label", "intake", "batch"))
    return [
        reverse("batches:patient_detail", args=[p]),
        reverse("batches:patient_edit", args=[p]),
        reverse("batches:order_create", args=[p]),
        reverse("batches:order_detail", args=[o]),
        reverse("batches:order_edit", args=[o]),
        reverse("batches:collection_register", args=[o]),
        reverse("batches:labels_print", args=[d]),
        reverse("batches:label_apply", args=[lb]),
        reverse("batches:label_destroy", args=[lb]),
        reverse("batches:custody_steps", args=[d]),
        reverse("batches:custody_scan", args=[d, CustodyStep.TRANSPORT]),
        reverse("batches:intake_record", args=[d]),
        reverse("batches:intake_detail", args=[i]),
        reverse("batches:infusion_record", args=[b]),
        reverse("batches:coi_timeline", args=[d]),
        reverse("batches:coi_batch", args=[b]),
    ]


def test_every_page_of_another_sites_chain_is_a_404(chain, other_site_user, client_for):
    client = client_for(other_site_user)
    for url in _urls(chain):
        methods = ("post",) if url.endswith(("/collection/", "/print/", "/apply/")) else ("get", "post")
        assert_hidden(client, url, methods=methods)


def test_lists_show_only_the_current_sites_patients(chain, other_site_user, client_for):
    html = client_for(other_site_user).get(reverse("batches:patient_list")).content.decode()
    assert chain["patient"].pseudonym not in html


@pytest.mark.parametrize("name", ["patient_list", "patient_create", "order_list"])
def test_pages_need_a_login(client, name):
    response = client.get(reverse(f"batches:{name}"))
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


@pytest.mark.parametrize(
    ("persona", "url_name", "method"),
    [
        ("technician", "patient_create", "get"),
        ("auditor", "patient_create", "post"),
        ("qp", "patient_edit", "get"),
        ("technician", "order_create", "get"),
        ("auditor", "label_destroy", "get"),
        ("auditor", "custody_scan", "get"),
        ("technician", "infusion_record", "post"),
        ("technician", "intake_detail", "post"),
    ],
)
def test_a_role_that_may_not_do_it_gets_a_403_with_the_reason(chain, request, client_for, persona, url_name, method):
    args = {
        "patient_create": [], "patient_edit": [chain["patient"].pk], "order_create": [chain["patient"].pk],
        "label_destroy": [chain["label"].pk], "custody_scan": [chain["donation"].pk, CustodyStep.TRANSPORT],
        "infusion_record": [chain["batch"].pk], "intake_detail": [chain["intake"].pk],
    }[url_name]
    response = getattr(client_for(request.getfixturevalue(persona)), method)(reverse(f"batches:{url_name}", args=args))
    assert response.status_code == 403
    assert "do not allow you" in response.content.decode()


def test_the_floor_sees_patients_pseudonymised_and_coordinators_see_the_record_number(
    chain, technician, coordinator, client_for
):
    patient = chain["patient"]
    for_tech = client_for(technician).get(reverse("batches:patient_detail", args=[patient.pk])).content.decode()
    for_coord = client_for(coordinator).get(reverse("batches:patient_detail", args=[patient.pk])).content.decode()
    tech_list = client_for(technician).get(reverse("batches:patient_list")).content.decode()

    assert patient.pseudonym in for_tech
    assert patient.hospital_record_number not in for_tech
    assert patient.wristband_code not in for_tech
    assert patient.hospital_record_number not in tech_list
    assert patient.hospital_record_number in for_coord


# -- patient and order forms ----------------------------------------------------------


def _patient_post(site, **overrides):
    data = {"initials": "J.K.", "birth_year": "1975", "hospital_record_number": "HRN-777", "wristband_code": "WB777",
            "weight_kg": "64.0", "weight_measured_on": site_today(site).isoformat()}
    data.update(overrides)
    return data


def test_a_coordinator_registers_a_patient_through_the_form(site, coordinator, client_for):
    response = client_for(coordinator).post(reverse("batches:patient_create"), _patient_post(site))

    patient = Patient.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("batches:patient_detail", args=[patient.pk])
    assert patient.initials == "J.K."


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("initials", "A\x00", "Null characters are not allowed"),
        ("hospital_record_number", "H" * 100_000, "at most 64 characters"),
        ("birth_year", "nineteen", "Enter a whole number"),
        ("weight_kg", "1e400", "Ensure that there are no more than"),
        ("weight_measured_on", "31/31/2025", "Enter a valid date"),
        ("initials", "1AB", "starting with a letter"),
        ("weight_measured_on", "2999-01-01", "in the future"),
    ],
)
def test_bad_patient_input_is_a_clear_form_error(site, coordinator, client_for, field, value, message):
    response = client_for(coordinator).post(reverse("batches:patient_create"), _patient_post(site, **{field: value}))

    assert response.status_code == 200
    assert message in response.content.decode()
    assert 'aria-invalid="true"' in response.content.decode()
    assert not Patient.objects.exists()


def test_a_stale_edit_form_says_so_and_changes_nothing(site, coordinator, client_for):
    patient = a_patient(coordinator, site)
    client = client_for(coordinator)
    url = reverse("batches:patient_edit", args=[patient.pk])
    form = _patient_post(site, initials="A.B.", hospital_record_number=patient.hospital_record_number,
                         wristband_code=patient.wristband_code, weight_kg="72.5", birth_year="1968")
    client.post(url, {**form, "weight_kg": "70.0", "reason": "Weighed again", "version": "1"})

    response = client.post(url, {**form, "weight_kg": "69.0", "reason": "Weighed once more", "version": "1"})

    assert response.status_code == 200
    assert "changed since you opened it" in response.content.decode()
    patient.refresh_from_db()
    assert patient.weight_kg == Decimal("70.0")


def test_an_edit_without_a_reason_is_refused(site, coordinator, client_for):
    patient = a_patient(coordinator, site)
    url = reverse("batches:patient_edit", args=[patient.pk])

    response = client_for(coordinator).post(url, _patient_post(site, version="1", reason=""))

    assert "This field is required" in response.content.decode()
    patient.refresh_from_db()
    assert patient.version == 1


def test_registering_the_collection_from_the_order_page_issues_the_din(site, coordinator, product, client_for):
    order = an_order(coordinator, a_patient(coordinator, site), product)
    client = client_for(coordinator)

    client.post(reverse("batches:collection_register", args=[order.pk]),
                {"collection_date": site_today(site).isoformat()})
    html = client.get(reverse("batches:order_detail", args=[order.pk])).content.decode()

    order.refresh_from_db()
    assert order.donation.din.startswith("W0001")
    assert order.donation.din[7:] in html
    assert "Print the apheresis bag label" in html


# -- labels ----------------------------------------------------------------------------


def test_printing_from_the_page_downloads_a_pdf_whose_barcodes_scan_back(site, coordinator, product, client_for):
    donation = a_collection(coordinator, a_patient(coordinator, site), product)

    response = client_for(coordinator).post(
        reverse("batches:labels_print", args=[donation.pk]),
        {"container_type": ContainerType.QC_SAMPLE, "quantity": "2"},
    )

    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert "QC-1_QC-2" in response["Content-Disposition"]
    din = din_of(donation)
    pages = scan_pages(response.content, 300)
    assert [sorted(text for _f, text in page) for page in pages] == [
        sorted([din.barcode_data, scan_of(donation, code)]) for code in ("QC-1", "QC-2")
    ]
    assert AuditEvent.objects.filter(action=Action.PRINT, root_id=str(donation.pk)).count() == 3  # with AB-1


def test_a_refused_print_job_prints_nothing_and_says_why(site, coordinator, product, client_for):
    donation = a_collection(coordinator, a_patient(coordinator, site), product)
    client = client_for(coordinator)

    response = client.post(reverse("batches:labels_print", args=[donation.pk]),
                           {"container_type": ContainerType.FINAL_PRODUCT_BAG, "quantity": "1"}, follow=True)

    assert "Nothing was printed" in response.content.decode()
    assert not Label.objects.filter(container_type=ContainerType.FINAL_PRODUCT_BAG).exists()


def test_applying_and_destroying_labels_from_the_page(site, coordinator, product, client_for):
    donation = a_collection(coordinator, a_patient(coordinator, site), product)
    (label,), _ = labels_print(actor=coordinator, donation=donation, container_type=ContainerType.QC_SAMPLE)
    client = client_for(coordinator)

    client.post(reverse("batches:label_apply", args=[label.pk]))
    empty = client.post(reverse("batches:label_destroy", args=[label.pk]), {"reason": ""})
    client.post(reverse("batches:label_destroy", args=[label.pk]), {"reason": "Sample spilled"})

    assert "This field is required" in empty.content.decode()
    label.refresh_from_db()
    assert label.status == LabelStatus.DESTROYED
    assert label.status_reason == "Sample spilled"


# -- the timeline ------------------------------------------------------------------------


def test_the_timeline_shows_every_handoff_and_the_blocked_attempts(chain, site, coordinator, technician, product,
                                                                     client_for):
    donation = chain["donation"]
    other = a_collection(coordinator, a_patient(coordinator, site, n=2), product)
    custody_scan(actor=technician, donation=donation, step=CustodyStep.MANUFACTURING,
                 scanned_code=scan_of(donation, "AB-1"), location="Clean room B")
    with pytest.raises(IdentityMismatch):
        custody_scan(actor=technician, donation=donation, step=CustodyStep.MANUFACTURING,
                     scanned_code=scan_of(other, "AB-1"), location="Clean room B")

    html = client_for(technician).get(reverse("batches:coi_timeline", args=[donation.pk])).content.decode()

    for text in ("Collection registered, DIN issued", "Printed 1 label", "applied to its apheresis bag",
                 "Receipt at GMP facility", "Apheresis intake recorded", f"Batch {chain['batch'].number} created",
                 "Into manufacturing", "Clean room B", "Custody scan refused (manufacturing)", "another donation",
                 "1 scan was refused"):
        assert text in html, text
    assert "UTC" in html
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d <small class=\"muted\">MSK", html)


def test_the_batch_link_opens_the_donations_timeline(chain, technician, client_for):
    response = client_for(technician).get(reverse("batches:coi_batch", args=[chain["batch"].pk]))
    assert response["Location"] == reverse("batches:coi_timeline", args=[chain["donation"].pk])


# -- bounded queries on lists -------------------------------------------------------------


def _fill(site, coordinator, product, n: int) -> None:
    for i in range(n):
        patient = a_patient(coordinator, site, n=100 + i)
        an_order(coordinator, patient, product)


@pytest.mark.parametrize("rows", [1, 20])
@pytest.mark.parametrize("name", ["patient_list", "order_list"])
def test_list_pages_run_a_bounded_number_of_queries(site, coordinator, product, client_for,
                                                    django_assert_max_num_queries, rows, name):
    _fill(site, coordinator, product, rows)
    client = client_for(coordinator)
    client.get(reverse(f"batches:{name}"))  # warm the session and permission caches

    with django_assert_max_num_queries(14):
        response = client.get(reverse(f"batches:{name}"))
    assert response.status_code == 200


@pytest.mark.parametrize("rows", [1, 20])
def test_the_coordinators_home_panel_runs_a_bounded_number_of_queries(site, coordinator, product, client_for,
                                                                      django_assert_max_num_queries, rows):
    _fill(site, coordinator, product, rows)
    client = client_for(coordinator)
    client.get("/")

    with django_assert_max_num_queries(16):
        response = client.get("/")
    html = response.content.decode()
    assert 'id="panel-patients_orders"' in html
    assert "ORD-HOME-" in html


def test_an_intake_time_in_the_sites_zone_is_stored_in_utc(site, coordinator, technician, product, small_mbr,
                                                           client_for):
    donation = a_collection(coordinator, a_patient(coordinator, site), product)
    local = (timezone.now() - dt.timedelta(hours=1)).astimezone(site.zone).replace(second=0, microsecond=0)
    data = {
        "collection_started_at": (local - dt.timedelta(hours=5)).strftime("%Y-%m-%dT%H:%M"),
        "collection_ended_at": (local - dt.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"),
        "received_at": local.strftime("%Y-%m-%dT%H:%M"),
        "transport_temperature_c": "4.0", "volume_ml": "210", "wbc_10e3_per_ul": "38", "cd3_cells_total": "2.5e9",
        "bag_intact": "yes", "label_scanned_code": scan_of(donation, "AB-1"),
    }

    client_for(technician).post(reverse("batches:intake_record", args=[donation.pk]), data)

    donation.refresh_from_db()
    assert donation.intake.received_at == local
