"""A coordinator cancels an order while a QP's release holds its batch (PostgreSQL): the
cancellation takes its locks in the order a release takes them (the batch first, then
the order), so it waits instead of deadlocking (the database would abort one of the two
and the user would get a server error)."""

from __future__ import annotations

import threading

import pytest
from django.db import close_old_connections, connection, transaction

from batches.models import Batch, Order, OrderStatus
from batches.services.patients import order_cancel
from qc.services.release import _lock_batch
from tests.batches.coi_steps import a_collection, a_patient, an_intake
from tests.batches.test_intake_correction_concurrency import _someone_waits_for_a_lock


@pytest.mark.integration
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_cancelling_an_order_during_a_release_of_its_batch_waits_instead_of_deadlocking(
    postgres, site, coordinator, technician, product, small_mbr
):
    intake = an_intake(technician, a_collection(coordinator, a_patient(coordinator, site, n=1), product))
    batch = Batch.objects.get(donation=intake.donation)
    order = Order.objects.get(pk=batch.order_id)
    release_holds_the_batch, go_on = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def release() -> None:  # as certification_* and batch_transition lock: the batch (with its joins), then the order
        try:
            with transaction.atomic():
                list(Batch.objects.select_for_update().filter(pk=batch.pk).values_list("pk", flat=True))
                release_holds_the_batch.set()
                go_on.wait(timeout=30)
                _lock_batch(batch, None)
                Order.objects.select_for_update().get(pk=batch.order_id)
        except BaseException as exc:  # reported to the main thread below
            errors.append(exc)
        finally:
            close_old_connections()
            connection.close()

    def cancel() -> None:
        try:
            order_cancel(actor=coordinator, order=order, reason="The patient no longer needs the product",
                         expected_version=order.version)
        except BaseException as exc:
            errors.append(exc)
        finally:
            close_old_connections()
            connection.close()

    releasing = threading.Thread(target=release)
    releasing.start()
    assert release_holds_the_batch.wait(timeout=30)
    cancelling = threading.Thread(target=cancel)
    cancelling.start()
    assert _someone_waits_for_a_lock(), "the cancellation never waited for the batch held by the release"
    go_on.set()
    releasing.join(timeout=60)
    cancelling.join(timeout=60)

    assert not errors, errors
    assert Order.objects.get(pk=order.pk).status == OrderStatus.CANCELLED
