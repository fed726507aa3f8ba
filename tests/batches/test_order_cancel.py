"""Cancelling an order: a coordinator's decision with a reason, possible only until
manufacturing starts; a batch not started yet is cancelled with it."""

from __future__ import annotations

import pytest
from django.urls import reverse

from batches.models import BatchState, OrderStatus
from batches.services.execution import batch_start
from batches.services.patients import order_cancel
from carmfg.audit.models import Action, AuditEvent
from carmfg.exceptions import InvalidInput, InvalidTransition, PermissionRefused, StaleRecord
from tests.batches.coi_steps import a_batch, a_collection, a_patient, an_order
from tests.conftest import assert_hidden


@pytest.fixture
def order(site, coordinator, product):
    return an_order(coordinator, a_patient(coordinator, site), product)


def test_a_coordinator_cancels_an_order_with_a_reason_and_it_is_audited(order, coordinator):
    order_cancel(actor=coordinator, order=order, reason="Patient no longer eligible", expected_version=order.version)

    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED
    event = AuditEvent.objects.filter(action=Action.TRANSITION, object_type="batches.order",
                                      object_id=str(order.pk)).latest("seq")
    assert event.changes["status"] == {"old": OrderStatus.REGISTERED, "new": OrderStatus.CANCELLED}
    assert event.reason == "Patient no longer eligible"


def test_cancelling_an_order_needs_a_reason(order, coordinator):
    with pytest.raises(InvalidInput):
        order_cancel(actor=coordinator, order=order, reason="  ", expected_version=order.version)
    order.refresh_from_db()
    assert order.status == OrderStatus.REGISTERED


def test_a_stale_cancel_changes_nothing(order, coordinator):
    with pytest.raises(StaleRecord):
        order_cancel(actor=coordinator, order=order, reason="Patient no longer eligible",
                     expected_version=order.version + 1)
    order.refresh_from_db()
    assert order.status == OrderStatus.REGISTERED


@pytest.mark.parametrize("persona", ["technician", "qp", "auditor", "qc_analyst"])
def test_only_coordinators_cancel_orders(order, request, persona):
    with pytest.raises(PermissionRefused):
        order_cancel(actor=request.getfixturevalue(persona), order=order, reason="No", expected_version=order.version)


def test_a_cancelled_order_cannot_be_cancelled_again(order, coordinator):
    order_cancel(actor=coordinator, order=order, reason="Patient no longer eligible", expected_version=order.version)
    order.refresh_from_db()
    with pytest.raises(InvalidTransition, match="closed"):
        order_cancel(actor=coordinator, order=order, reason="Again", expected_version=order.version)


def test_a_batch_not_started_is_cancelled_with_its_order(site, coordinator, technician, product, small_mbr):
    batch = a_batch(coordinator, technician, a_patient(coordinator, site), product)
    order = batch.order
    assert batch.state == BatchState.PLANNED

    order_cancel(actor=coordinator, order=order, reason="Patient died before manufacturing",
                 expected_version=order.version)

    batch.refresh_from_db()
    order.refresh_from_db()
    assert (order.status, batch.state) == (OrderStatus.CANCELLED, BatchState.CANCELLED)


def test_an_order_cannot_be_cancelled_once_its_batch_has_started(site, coordinator, technician, product, small_mbr):
    batch = a_batch(coordinator, technician, a_patient(coordinator, site), product)
    batch_start(actor=technician, batch=batch, expected_version=batch.version)
    order = batch.order
    order.refresh_from_db()

    with pytest.raises(InvalidTransition, match="has started"):
        order_cancel(actor=coordinator, order=order, reason="Changed our mind", expected_version=order.version)

    batch.refresh_from_db()
    order.refresh_from_db()
    assert batch.state == BatchState.IN_PROCESS
    assert order.status != OrderStatus.CANCELLED


def test_the_order_page_cancels_with_a_reason(order, coordinator, client_for):
    client = client_for(coordinator)
    page = client.get(reverse("batches:order_detail", args=[order.pk])).content.decode()
    assert reverse("batches:order_cancel", args=[order.pk]) in page

    response = client.post(reverse("batches:order_cancel", args=[order.pk]),
                           {"reason": "Patient no longer eligible", "version": order.version}, follow=True)

    assert "cancelled" in response.content.decode()
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED


@pytest.mark.parametrize("data", [{"reason": "", "version": "1"}, {"reason": "x", "version": "abc"},
                                  {"reason": "x\x00y", "version": "1"}, {}])
def test_bad_cancel_input_is_a_message_and_changes_nothing(order, coordinator, client_for, data):
    response = client_for(coordinator).post(reverse("batches:order_cancel", args=[order.pk]), data, follow=True)

    assert response.status_code == 200
    assert "The order was not cancelled." in response.content.decode()
    order.refresh_from_db()
    assert order.status == OrderStatus.REGISTERED


def test_the_cancel_form_is_not_offered_once_the_batch_has_started(site, coordinator, technician, product, small_mbr,
                                                                   client_for):
    batch = a_batch(coordinator, technician, a_patient(coordinator, site), product)
    batch_start(actor=technician, batch=batch, expected_version=batch.version)

    page = client_for(coordinator).get(reverse("batches:order_detail", args=[batch.order_id])).content.decode()

    assert reverse("batches:order_cancel", args=[batch.order_id]) not in page


def test_cancelling_is_hidden_from_another_site(order, client_for, other_site_user):
    assert_hidden(client_for(other_site_user), reverse("batches:order_cancel", args=[order.pk]), methods=("post",))
    order.refresh_from_db()
    assert order.status == OrderStatus.REGISTERED


def test_a_collected_order_can_still_be_cancelled(site, coordinator, product):
    donation = a_collection(coordinator, a_patient(coordinator, site), product)
    order = donation.order
    order.refresh_from_db()

    order_cancel(actor=coordinator, order=order, reason="Apheresis product lost in transport",
                 expected_version=order.version)

    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED
