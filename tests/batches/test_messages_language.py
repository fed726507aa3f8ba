"""Messages that carry values speak the reader's language; the record keeps English (issue #11).

A flash message or a refusal is built from an English template and its values: a
user who chose Russian reads it in Russian, with the same values, while the audit
trail (and everything else stored) keeps the English wording.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import translation

from batches.calculations import viability_pct
from batches.demo_mbr import run_good_steps
from batches.isbt128 import DinError, parse_din
from batches.models import CustodyStep, OrderStatus, StepRecord
from batches.progress import load_plan
from batches.scans import ScanError, parse_label_scan
from carmfg.accounts.services import profile_language_set
from carmfg.audit.models import Action, AuditEvent
from carmfg.exceptions import GMPError
from tests.batches.coi_steps import a_collection, a_patient, an_order
from tests.conftest import PASSWORD


def test_a_cancelled_order_is_announced_in_russian_and_audited_in_english(site, coordinator, product,
                                                                          russian_client):
    order = an_order(coordinator, a_patient(coordinator, site), product)
    client = russian_client(coordinator)

    response = client.post(f"/batches/orders/{order.pk}/cancel/",
                           {"reason": "Patient no longer eligible", "version": order.version}, follow=True)

    page = response.content.decode()
    assert f"Заказ {order.number} отменён." in page
    assert f"Order {order.number} cancelled." not in page
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED
    event = AuditEvent.objects.filter(action=Action.TRANSITION, object_type="batches.order",
                                      object_id=str(order.pk)).latest("seq")
    assert event.reason == "Patient no longer eligible"
    assert event.changes["status"]["new"] == OrderStatus.CANCELLED


def test_an_order_that_is_not_cancelled_says_why_in_russian(site, coordinator, product, russian_client):
    order = an_order(coordinator, a_patient(coordinator, site), product)
    client = russian_client(coordinator)

    page = client.post(f"/batches/orders/{order.pk}/cancel/", {"reason": "Stop", "version": order.version + 1},
                       follow=True).content.decode()

    assert "Заказ не отменён." in page
    assert "The order was not cancelled." not in page
    order.refresh_from_db()
    assert order.status == OrderStatus.REGISTERED


def test_the_same_message_stays_english_for_an_english_reader(site, coordinator, product, client_for):
    order = an_order(coordinator, a_patient(coordinator, site), product)
    profile_language_set(actor=coordinator, language="en")

    page = client_for(coordinator).post(f"/batches/orders/{order.pk}/cancel/",
                                        {"reason": "Patient no longer eligible", "version": order.version},
                                        follow=True).content.decode()

    assert f"Order {order.number} cancelled." in page


def test_a_refused_value_is_explained_in_russian_with_its_values(started_batch, technician, verifier,
                                                                  russian_client):
    run_good_steps(batch=started_batch, technician=technician, verifier=verifier, password=PASSWORD,
                   stop_before="apheresis_volume_ml")
    state = load_plan(started_batch).by_code["apheresis_volume_ml"]
    client = russian_client(technician)

    response = client.post(f"/batches/{started_batch.pk}/steps/{state.definition.pk}/record/",
                           {"value": "80.125", "unit": "mL", "password": PASSWORD, "expected_occurrence": 1})

    assert response.status_code == 400
    page = response.content.decode()
    assert "80.125" in page
    assert "знаков после запятой" in page
    assert "decimal places" not in page
    assert not StepRecord.objects.filter(batch=started_batch, definition=state.definition).exists()


def test_calculation_and_scan_refusals_keep_english_for_the_record_and_translate_for_the_reader():
    with pytest.raises(GMPError) as calculation:
        viability_pct(viable_cells=Decimal("120"), total_cells=Decimal("100"))
    with pytest.raises(ScanError) as scan:
        parse_label_scan("W0001 26 000042/ZZ-9")
    with pytest.raises(DinError) as din:
        parse_din("W00012")

    with translation.override("ru"):
        assert calculation.value.message == (
            "More viable cells (120) than cells in total (100): check both counts.")
        assert calculation.value.text == (
            "Жизнеспособных клеток (120) больше, чем клеток всего (100): проверьте оба подсчёта.")
        assert scan.value.message.startswith("After the DIN the scan holds ZZ-9, which is not a container code")
        assert scan.value.text.startswith("После DIN в скане следует ZZ-9")
        assert "6 characters" in din.value.message
        assert "6 символ" in din.value.text
        assert str(din.value) == din.value.message


def test_a_per_cent_sign_survives_in_both_languages():
    from batches.calculations import CalculationError, check_fraction_percents

    with pytest.raises(CalculationError) as refused:
        check_fraction_percents([10, 30, 50])

    assert refused.value.message == "The fractions add up to 90 %, not 100 %."
    with translation.override("ru"):
        assert refused.value.text == "Сумма фракций — 90 %, а не 100 %."



def test_an_unreadable_custody_scan_is_explained_in_russian_and_audited_in_english(site, coordinator, product,
                                                                                  technician, russian_client):
    donation = a_collection(coordinator, a_patient(coordinator, site), product)
    client = russian_client(technician)

    response = client.post(f"/batches/donations/{donation.pk}/custody/{CustodyStep.TRANSPORT}/",
                           {"temperature_c": "4.0", "location": "Ward 3", "scanned_code": "HELLO"})

    assert response.status_code == 409
    page = response.content.decode()
    assert "Нечитаемый скан: DIN слишком короткий: 5 символов" in page
    assert "Транспортировка" in page  # the step, in the blocked screen's context line
    assert "Unreadable scan" not in page
    event = AuditEvent.objects.filter(action=Action.BLOCKED, object_id=str(donation.pk)).get()
    assert event.changes["cause"] == ("Unreadable scan: The DIN is too short: 5 characters, where a DIN has 13 "
                                      "(5 facility, 2 year, 6 sequence).")


def test_why_a_step_cannot_be_done_yet_is_shown_in_russian_and_kept_english(started_batch, technician,
                                                                           russian_client):
    state = load_plan(started_batch).steps[2]
    assert state.refusal.startswith("Earlier steps must be done first: ")
    client = russian_client(technician)

    page = client.get(f"/batches/{started_batch.pk}/", {"step": state.definition.pk}).content.decode()

    assert "Сначала нужно выполнить предыдущие шаги: " in page
    assert "Earlier steps must be done first" not in page


def test_the_value_a_calculation_refuses_is_named_in_the_readers_language():
    from batches.calculations import CalculationError, moi

    with pytest.raises(CalculationError) as refused:
        moi(titer_tu_per_ml=Decimal("0"), volume_ml=Decimal("2"), viable_cells=Decimal("1e8"))

    assert refused.value.message == "The vector titer must be greater than zero (it is 0)."
    with translation.override("ru"):
        assert refused.value.text == "Титр вектора: значение должно быть больше нуля (сейчас 0)."
