"""Text the pages compute (limits, why a lot or an instrument may not be used, what keeps
a batch or a draft recipe from being complete, a value to confirm, the names inside a
refusal) is shown in the reader's language; what is stored or audited stays English
(issue #11)."""

from __future__ import annotations

import pytest
from django.utils import timezone, translation
from django.utils.html import escape
from django.utils.translation import gettext_noop

from batches.demo_mbr import run_good_steps
from batches.exceptions import NotReady
from batches.models import Equipment, EquipmentStatus, MasterBatchRecord, MbrStatus, StepRecord
from batches.progress import load_plan
from batches.services.execution import batch_complete, batch_start, step_record
from carmfg.accounts.permissions import SitePerm, require_site_perm
from carmfg.exceptions import InvalidInput, PermissionRefused
from carmfg.textinput import clean_text
from tests.batches.coi_steps import a_patient, an_order
from tests.conftest import PASSWORD


def test_a_value_to_confirm_and_the_step_limits_are_shown_in_russian(started_batch, technician, verifier,
                                                                     russian_client):
    run_good_steps(batch=started_batch, technician=technician, verifier=verifier, password=PASSWORD,
                   stop_before="apheresis_volume_ml")
    state = load_plan(started_batch).by_code["apheresis_volume_ml"]
    client = russian_client(technician)

    shown = client.get(f"/batches/{started_batch.pk}/", {"step": state.definition.pk}).content.decode()
    response = client.post(f"/batches/{started_batch.pk}/steps/{state.definition.pk}/record/",
                           {"value": "80.0", "unit": "mL", "password": PASSWORD, "expected_occurrence": 1})

    assert "тревога 100–400 mL; действие 50–500 mL" in shown
    assert "alert 100–400" not in shown
    assert response.status_code == 409
    page = response.content.decode()
    assert "80 mL вне пределов тревоги (тревога 100–400 mL; действие 50–500 mL)" in page
    assert "outside the alert limits" not in page
    assert not StepRecord.objects.filter(batch=started_batch, definition=state.definition).exists()


def test_what_keeps_a_batch_from_completing_is_listed_and_refused_in_russian_and_kept_english(
    small_mbr, make_batch, technician, russian_client
):
    batch = make_batch(small_mbr.product, mbr=small_mbr)
    batch = batch_start(actor=technician, batch=batch, expected_version=batch.version)
    for state in load_plan(batch).steps:
        is_value = state.definition.kind == "value"
        step_record(actor=technician, batch=batch, definition=state.definition, password=PASSWORD,
                    expected_occurrence=1, value="90.0" if is_value else None, unit="%" if is_value else None)
    batch.refresh_from_db()
    label = "Selection & activation · Seeding verified"
    client = russian_client(technician)

    page = client.get(f"/batches/{batch.pk}/").content.decode()
    refused = client.post(f"/batches/{batch.pk}/complete/", {"expected_version": batch.version},
                          follow=True).content.decode()

    assert f"{escape(label)}: нужна верификация вторым лицом." in page
    assert "needs verification" not in page
    assert f"Запись о серии не завершена: {escape(label)}: нужна верификация вторым лицом." in refused
    assert "needs verification" not in refused
    with pytest.raises(NotReady) as english:
        batch_complete(actor=technician, batch=batch, expected_version=batch.version)
    assert english.value.message == f"The batch record is not complete: {label}: needs verification by a second person."
    assert [p.message for p in load_plan(batch).completion_problems()] == [
        f"{label}: needs verification by a second person."]


def test_why_a_lot_or_an_instrument_may_not_be_used_is_shown_in_russian(site, demo_materials, site_admin,
                                                                        russian_client):
    equipment = Equipment.objects.filter(site=site).order_by("pk")[0]
    Equipment.objects.filter(pk=equipment.pk).update(status=EquipmentStatus.OUT_OF_SERVICE)
    client = russian_client(site_admin)

    lots = client.get("/batches/materials/").content.decode()
    instruments = client.get("/batches/equipment/").content.decode()
    edit = client.get(f"/batches/equipment/{equipment.pk}/edit/").content.decode()

    assert "на карантине (не выпущена)" in lots
    assert "просрочена (срок годности " in lots
    assert "in quarantine" not in lots
    assert "expired (expiry date" not in lots
    assert "выведено из эксплуатации" in instruments
    assert "out of service" not in instruments
    assert "выведено из эксплуатации" in edit
    assert "out of service" not in edit


def test_what_a_draft_recipe_lacks_is_shown_in_russian(product, site_admin, russian_client):
    draft = MasterBatchRecord.objects.create(site=product.site, product=product, version=9, title="Draft",
                                             status=MbrStatus.DRAFT, effective_at=timezone.now())
    client = russian_client(site_admin)

    page = client.get(f"/batches/mbr/{draft.pk}/").content.decode()

    assert "В записи нет этапов." in page
    assert "The record has no stages." not in page


def test_a_refused_permission_names_the_action_in_russian_and_keeps_it_english(site, coordinator, technician,
                                                                                product, russian_client):
    order = an_order(coordinator, a_patient(coordinator, site), product)
    client = russian_client(technician)

    response = client.post(f"/batches/orders/{order.pk}/cancel/", {"reason": "Stop", "version": order.version})

    assert response.status_code == 403
    page = response.content.decode()
    assert "не позволяют: отменять заказы." in page
    assert "cancel orders" not in page
    with pytest.raises(PermissionRefused) as refused:
        require_site_perm(technician, site, SitePerm.PATIENTS, action=gettext_noop("register patients"))
    assert refused.value.message == f"Your roles at {site} do not allow you to register patients."
    with translation.override("ru"):
        assert refused.value.text == f"Ваши роли на площадке {site} не позволяют: регистрировать пациентов."


def test_a_text_field_is_named_in_russian_in_its_refusal_and_in_english_in_the_record():
    with pytest.raises(InvalidInput) as refused:
        clean_text("bad\x07", field=gettext_noop("Comment"), max_length=100)

    assert refused.value.message == "Comment: contains control characters, which are not allowed."
    assert refused.value.field == "Comment"
    with translation.override("ru"):
        assert refused.value.text.startswith("Комментарий: ")
        assert "Comment" not in refused.value.text


def test_a_refused_reason_is_named_in_russian_on_the_page(site, coordinator, product, russian_client):
    order = an_order(coordinator, a_patient(coordinator, site), product)
    client = russian_client(coordinator)

    page = client.post(f"/batches/orders/{order.pk}/cancel/", {"reason": "Stop\x07", "version": order.version},
                       follow=True).content.decode()

    assert "причина: содержит управляющие символы" in page
    assert "reason: contains" not in page
    order.refresh_from_db()
    assert order.status != "cancelled"


def test_a_refused_patient_value_is_named_in_russian_and_kept_english(site, coordinator):
    with pytest.raises(InvalidInput) as refused:
        a_patient(coordinator, site, weight_kg="heavy")

    assert refused.value.message == "Weight (kg): expected a number."
    assert refused.value.field == "weight_kg"
    with translation.override("ru"):
        assert refused.value.text == "Масса тела (кг): ожидается число."
