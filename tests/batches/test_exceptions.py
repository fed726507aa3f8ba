"""Refusals of manufacturing and chain of identity: the record keeps one English text,
the user reads the refusal, values included, in their own language (issue #11)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext_noop

from batches.demo_mbr import run_good_steps
from batches.exceptions import (
    ConfirmationRequired,
    IdentityMismatch,
    NotReady,
    OutOfOrder,
    more_phrase,
)
from batches.models import CustodyStep
from batches.progress import load_plan
from batches.services.custody import custody_scan
from batches.services.execution import step_record
from carmfg.audit.models import Action, AuditEvent
from carmfg.texts import Lowered, Text, joined
from tests.batches.coi_steps import a_collection, a_patient, scan_of
from tests.conftest import PASSWORD


@pytest.fixture
def donation(site, coordinator, product):
    return a_collection(coordinator, a_patient(coordinator, site, n=1), product)


@pytest.fixture
def other_patients_donation(site, coordinator, product):
    return a_collection(coordinator, a_patient(coordinator, site, n=2), product)


def test_a_sentence_is_english_in_the_record_and_translated_with_its_nested_values():
    nested = NotReady(gettext_noop("The record cannot be approved yet: %(problems)s%(more)s"), params={
        "problems": joined([Text(gettext_noop("The record has no stages."))]),
        "more": more_phrase(2),
    })

    assert nested.message == "The record cannot be approved yet: The record has no stages. (and 2 more)"
    with translation.override("ru"):
        assert nested.text == "Запись пока нельзя утвердить: В записи нет этапов. (и ещё 2)"
    with translation.override("en"):
        assert nested.text == nested.message


def test_a_choice_label_in_a_sentence_is_lower_case_but_keeps_its_abbreviations():
    label = Lowered("QC sample")

    assert label.message == "qc sample"  # as the English record always had it
    with translation.override("ru"):
        assert label.text == "образец ОКК"


def test_what_was_scanned_is_shown_as_it_is_never_translated():
    scanned = Text.literal("Nothing changed.")

    with translation.override("ru"):
        assert scanned.text == "Nothing changed."


def test_an_untranslated_sentence_is_shown_in_english_with_its_values():
    error = NotReady("Nobody translated %(what)s.", params={"what": Text("this %(n)s", {"n": 3})})

    with translation.override("ru"):
        assert error.text == "Nobody translated this 3."
    assert Text("").text == ""  # never the catalogue's header


def test_another_patients_bag_is_refused_in_russian_on_the_page_and_audited_in_english(
    donation, other_patients_donation, technician, russian_client
):
    client = russian_client(technician)
    patient = other_patients_donation.order.patient.pseudonym

    response = client.post(reverse("batches:custody_scan", args=[donation.pk, CustodyStep.TRANSPORT]), {
        "temperature_c": "4.0", "location": "Ward 3", "scanned_code": scan_of(other_patients_donation, "AB-1"),
    })

    assert response.status_code == 409
    html = response.content.decode()
    overlay = html[html.index('<div class="scan-blocked"'):]
    assert f"Эта этикетка принадлежит другой донации (пациент {patient})." in overlay
    assert f"<dd>{donation.din_display} · пакет афереза</dd>" in overlay
    assert "belongs to another donation" not in overlay
    blocked = AuditEvent.objects.get(action=Action.BLOCKED, root_id=str(donation.pk))
    assert blocked.changes["cause"] == f"This label belongs to another donation (patient {patient})."


def test_a_wrong_bag_refusal_keeps_english_for_the_record_and_russian_for_the_user(
    donation, other_patients_donation, technician
):
    with translation.override("ru"), pytest.raises(IdentityMismatch) as excinfo:
        custody_scan(actor=technician, donation=donation, step=CustodyStep.TRANSPORT, location="Ward 3",
                     temperature_c=Decimal("4.0"), scanned_code=scan_of(other_patients_donation, "AB-1"))

    error = excinfo.value
    assert error.message.startswith("This label belongs to another donation (patient ")
    assert error.message.endswith("The step is blocked: nothing was recorded.")
    with translation.override("ru"):
        assert error.cause_text.startswith("Эта этикетка принадлежит другой донации (пациент ")
        assert error.text.startswith(error.cause_text + " Ожидалось ")
        assert error.text.endswith("Шаг заблокирован: ничего не записано.")


def test_a_value_outside_the_alert_limits_is_explained_in_russian_with_its_value_and_limits(
    started_batch, technician, verifier
):
    batch = started_batch
    run_good_steps(batch=batch, technician=technician, verifier=verifier, password=PASSWORD,
                   stop_before="apheresis_volume_ml")
    state = load_plan(batch).by_code["apheresis_volume_ml"]

    with pytest.raises(ConfirmationRequired) as excinfo:
        step_record(actor=technician, batch=batch, definition=state.definition, password=PASSWORD,
                    expected_occurrence=state.next_occurrence, value="80.0", unit="mL")

    error = excinfo.value
    assert error.message == ("80 mL is outside the alert limits (alert 100–400 mL; action 50–500 mL). "
                             "Check the value; to record it, tick the confirmation and explain in the comment.")
    with translation.override("ru"):
        assert error.text == ("80 mL вне пределов тревоги (тревога 100–400 mL; действие 50–500 mL). "
                              "Проверьте значение; чтобы записать его, отметьте подтверждение и поясните в комментарии.")


def test_a_step_out_of_order_is_refused_in_russian_naming_the_steps_before_it(
    started_batch, technician
):
    batch = started_batch
    state = load_plan(batch).by_code["apheresis_volume_ml"]

    with pytest.raises(OutOfOrder) as excinfo:
        step_record(actor=technician, batch=batch, definition=state.definition, password=PASSWORD,
                    expected_occurrence=state.next_occurrence, value="212.0", unit="mL")

    error = excinfo.value
    assert error.message == state.refusal
    assert error.message.startswith("Earlier steps must be done first: ")
    with translation.override("ru"):
        assert error.text.startswith("Сначала нужно выполнить предыдущие шаги: ")
        assert "Line clearance" in error.text  # the step's own name, as the recipe spells it
