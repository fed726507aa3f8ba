"""A QP's release of a batch and another change of the same batch's records at the same
moment (PostgreSQL): every service takes its locks in the order a release takes them (the
batch first, then the order, then the rest), so the second one waits for the first
instead of the two deadlocking (the database would abort one of them and its user would
get a server error)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from decimal import Decimal

import pytest
from django.db import close_old_connections, connection, transaction

from batches.models import Batch, IntakeCorrection, Order, OrderStatus
from batches.services.intake_correction import intake_correct
from batches.services.patients import order_cancel
from qc.services.release import _lock_batch
from tests.batches.coi_steps import a_collection, a_patient, an_intake
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _someone_waits_for_a_lock(timeout: float = 20) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                           "AND datname = current_database()")
            if cursor.fetchone()[0]:
                return True
        time.sleep(0.05)
    return False


def _during_a_release(batch: Batch, change: Callable[[], object]) -> list[BaseException]:
    """Run ``change`` in a second thread while a release holds ``batch``; the release then
    takes the rest of its locks as ``certification_*`` and ``batch_transition`` do (the
    batch with its joins, then the order). Returns what either side raised."""
    release_holds_the_batch, go_on = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def in_thread(work: Callable[[], object]) -> Callable[[], None]:
        def run() -> None:
            try:
                work()
            except BaseException as exc:  # reported to the test below
                errors.append(exc)
            finally:
                close_old_connections()
                connection.close()
        return run

    def release() -> None:
        with transaction.atomic():
            list(Batch.objects.select_for_update().filter(pk=batch.pk).values_list("pk", flat=True))
            release_holds_the_batch.set()
            go_on.wait(timeout=30)
            _lock_batch(batch, None)
            Order.objects.select_for_update().get(pk=batch.order_id)

    releasing = threading.Thread(target=in_thread(release))
    releasing.start()
    assert release_holds_the_batch.wait(timeout=30)
    changing = threading.Thread(target=in_thread(change))
    changing.start()
    assert _someone_waits_for_a_lock(), "the change never waited for the batch held by the release"
    go_on.set()
    releasing.join(timeout=60)
    changing.join(timeout=60)
    return errors


@pytest.fixture
def intake(site, coordinator, technician, product, small_mbr):
    return an_intake(technician, a_collection(coordinator, a_patient(coordinator, site, n=1), product))


def test_a_correction_of_the_intake_during_a_release_waits_instead_of_deadlocking(postgres, intake, technician):
    batch = Batch.objects.get(donation=intake.donation)

    errors = _during_a_release(batch, lambda: intake_correct(
        actor=technician, intake=intake, changes={"volume_ml": Decimal("205")},
        reason="Typing error: 205 mL written as 250 mL", password=PASSWORD, expected_version=intake.version))

    assert not errors, errors
    assert IntakeCorrection.objects.filter(intake=intake).count() == 1


def test_cancelling_the_order_during_a_release_waits_instead_of_deadlocking(postgres, intake, coordinator):
    batch = Batch.objects.get(donation=intake.donation)
    order = Order.objects.get(pk=batch.order_id)

    errors = _during_a_release(batch, lambda: order_cancel(
        actor=coordinator, order=order, reason="The patient no longer needs the product",
        expected_version=order.version))

    assert not errors, errors
    assert Order.objects.get(pk=order.pk).status == OrderStatus.CANCELLED
