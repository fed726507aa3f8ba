"""A correction of the intake and a QP's release of the same batch at the same moment
(PostgreSQL): the correction takes its locks in the order a release takes them (the batch
first, then the order), so one waits for the other instead of the two deadlocking (the
database would abort one of them and the user would get a server error)."""

from __future__ import annotations

import threading
import time
from decimal import Decimal

import pytest
from django.db import close_old_connections, connection, transaction

from batches.models import Batch, IntakeCorrection, Order
from batches.services.intake_correction import intake_correct
from qc.services.release import _lock_batch
from tests.batches.coi_steps import a_collection, a_patient, an_intake
from tests.conftest import PASSWORD


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


@pytest.mark.integration
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_correction_during_a_release_of_the_batch_waits_instead_of_deadlocking(
    postgres, site, coordinator, technician, product, small_mbr
):
    intake = an_intake(technician, a_collection(coordinator, a_patient(coordinator, site, n=1), product))
    batch = Batch.objects.get(donation=intake.donation)
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

    def correction() -> None:
        try:
            intake_correct(actor=technician, intake=intake, changes={"volume_ml": Decimal("205")},
                           reason="Typing error: 205 mL written as 250 mL", password=PASSWORD,
                           expected_version=intake.version)
        except BaseException as exc:
            errors.append(exc)
        finally:
            close_old_connections()
            connection.close()

    releasing = threading.Thread(target=release)
    releasing.start()
    assert release_holds_the_batch.wait(timeout=30)
    correcting = threading.Thread(target=correction)
    correcting.start()
    assert _someone_waits_for_a_lock(), "the correction never waited for the batch held by the release"
    go_on.set()
    releasing.join(timeout=60)
    correcting.join(timeout=60)

    assert not errors, errors
    assert IntakeCorrection.objects.filter(intake=intake).count() == 1
