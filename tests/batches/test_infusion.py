"""Infusion at the bedside closes the chain of identity: the right bag, the right
patient, a released batch, each fraction once and in order."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from batches.exceptions import IdentityMismatch, NotReady
from batches.models import BatchState, CustodyEvent, CustodyStep, Infusion, OrderStatus
from batches.services.infusion import infusion_record
from carmfg.audit.models import Action, AuditEvent
from carmfg.esign.exceptions import SignatureRefused
from carmfg.esign.models import Meaning, Signature
from carmfg.esign.services import signable_hash
from carmfg.exceptions import InvalidInput, PermissionRefused
from tests.batches.coi_steps import a_batch, a_patient, final_bags, released, scan_of
from tests.conftest import PASSWORD


@pytest.fixture
def batch(site, coordinator, technician, product, small_mbr):
    batch = a_batch(coordinator, technician, a_patient(coordinator, site, n=1), product)
    final_bags(technician, batch)
    return batch


def _infuse(actor, batch, fraction=1, *, bag=None, wristband=None, at=None, password=PASSWORD, **kwargs):
    return infusion_record(
        actor=actor, batch=batch, fraction_number=fraction, password=password,
        bag_scanned_code=bag if bag is not None else scan_of(batch.donation, f"FP-{fraction}"),
        wristband_scanned_code=wristband if wristband is not None else batch.order.patient.wristband_code,
        infused_at=at or timezone.now(), **kwargs,
    )


@pytest.mark.parametrize("state", [BatchState.PLANNED, BatchState.IN_PROCESS, BatchState.AWAITING_RELEASE])
def test_infusion_before_release_is_refused_and_the_attempt_audited(batch, coordinator, state):
    from batches.services.transitions import batch_transition

    path = [BatchState.IN_PROCESS, BatchState.AWAITING_RELEASE]
    for step in path[: path.index(state) + 1] if state != BatchState.PLANNED else []:
        batch = batch_transition(actor=coordinator, batch=batch, to_state=step, reason="test")

    with pytest.raises(NotReady, match="released"):
        _infuse(coordinator, batch)

    assert not Infusion.objects.exists()
    blocked = AuditEvent.objects.get(action=Action.BLOCKED, root_id=str(batch.donation_id))
    assert blocked.changes["context"] == "infusion"


@pytest.mark.parametrize("state", [BatchState.PROVISIONALLY_RELEASED, BatchState.RELEASED])
def test_a_released_batch_is_infused_when_bag_and_wristband_match(batch, coordinator, state):
    batch = released(batch, coordinator, to=state)

    infusion = _infuse(coordinator, batch, 1)

    assert infusion.fraction_percent == Decimal("10")
    assert infusion.recorded_by == coordinator
    bedside = CustodyEvent.objects.get(step=CustodyStep.BEDSIDE)
    assert bedside.label is not None
    assert bedside.label.container_code == "FP-1"
    assert AuditEvent.objects.filter(object_type="batches.infusion", object_id=str(infusion.pk),
                                     action=Action.CREATE).exists()


def test_a_wrong_wristband_at_the_bedside_is_refused_and_audited(batch, coordinator, site):
    batch = released(batch, coordinator)
    someone_else = a_patient(coordinator, site, n=2)

    with pytest.raises(IdentityMismatch, match="Wrong patient") as excinfo:
        _infuse(coordinator, batch, wristband=someone_else.wristband_code)

    assert not Infusion.objects.exists()
    assert not CustodyEvent.objects.filter(step=CustodyStep.BEDSIDE).exists()
    assert batch.order.patient.pseudonym in excinfo.value.expected
    # The expected wristband code is never shown: it could be typed in instead of scanned.
    assert batch.order.patient.wristband_code not in str(excinfo.value)
    blocked = AuditEvent.objects.get(action=Action.BLOCKED, root_id=str(batch.donation_id))
    assert someone_else.wristband_code in blocked.changes["scanned"]


def test_another_patients_bag_at_the_bedside_is_refused(batch, site, coordinator, technician, product):
    theirs = a_batch(coordinator, technician, a_patient(coordinator, site, n=2), product)
    final_bags(technician, theirs)
    batch = released(batch, coordinator)

    with pytest.raises(IdentityMismatch, match="another donation"):
        _infuse(coordinator, batch, bag=scan_of(theirs.donation, "FP-1"))
    assert not Infusion.objects.exists()


def test_the_bag_of_another_fraction_is_refused(batch, coordinator):
    batch = released(batch, coordinator)

    with pytest.raises(IdentityMismatch, match="holds fraction 3"):
        _infuse(coordinator, batch, 1, bag=scan_of(batch.donation, "FP-3"))


def test_each_fraction_is_given_once_and_in_order(batch, coordinator):
    batch = released(batch, coordinator)

    with pytest.raises(NotReady, match="in order"):
        _infuse(coordinator, batch, 2)
    _infuse(coordinator, batch, 1)
    with pytest.raises(NotReady, match="given once"):
        _infuse(coordinator, batch, 1)
    assert Infusion.objects.count() == 1


def test_the_order_is_partly_infused_until_every_fraction_is_given(batch, coordinator):
    batch = released(batch, coordinator)
    batch.order.refresh_from_db()
    assert batch.order.status == OrderStatus.RELEASED
    statuses = []
    for fraction in (1, 2, 3):
        _infuse(coordinator, batch, fraction, at=batch.created_at + dt.timedelta(seconds=fraction))
        batch.order.refresh_from_db()
        statuses.append(batch.order.status)

    assert statuses == [OrderStatus.PARTLY_INFUSED, OrderStatus.PARTLY_INFUSED, OrderStatus.INFUSED]
    assert [i.fraction_percent for i in Infusion.objects.order_by("fraction_number")] == [10, 30, 60]


@pytest.mark.parametrize(
    ("at", "message"),
    [
        (timezone.now() + dt.timedelta(hours=1), "future"),
        (timezone.now() - dt.timedelta(days=30), "before the batch"),
        (dt.datetime(2026, 1, 1, 10, 0), "date and time"),  # noqa: DTZ001  (naive on purpose)
    ],
)
def test_the_infusion_time_is_checked(batch, coordinator, at, message):
    batch = released(batch, coordinator)
    with pytest.raises(InvalidInput, match=message):
        _infuse(coordinator, batch, at=at)


@pytest.mark.parametrize("fraction", [0, 4, True, "1"])
def test_the_fraction_must_be_one_of_the_products(batch, coordinator, fraction):
    batch = released(batch, coordinator)
    with pytest.raises(InvalidInput, match="Fraction"):
        _infuse(coordinator, batch, fraction, bag=scan_of(batch.donation, "FP-1"))


def test_a_technician_does_not_record_infusions(batch, coordinator, technician):
    batch = released(batch, coordinator)
    with pytest.raises(PermissionRefused):
        _infuse(technician, batch)


# -- at the bedside, through the page ----------------------------------------------------


def _page(batch):
    from django.urls import reverse

    return reverse("batches:infusion_record", args=[batch.pk])


def _post(batch, **overrides):
    local = timezone.now().astimezone(batch.site.zone)
    data = {"fraction_number": "1", "infused_at": local.strftime("%Y-%m-%dT%H:%M"),
            "bag_scanned_code": scan_of(batch.donation, "FP-1"),
            "wristband_scanned_code": batch.order.patient.wristband_code, "password": PASSWORD, "note": ""}
    data.update(overrides)
    return data


def test_the_infusion_page_warns_before_release_and_the_attempt_is_refused(batch, coordinator, client_for):
    client = client_for(coordinator)

    page = client.get(_page(batch)).content.decode()
    response = client.post(_page(batch), _post(batch))

    assert "Not released" in page
    assert "Infusion refused" in response.content.decode()
    assert not Infusion.objects.exists()


def test_a_wrong_wristband_on_the_page_blocks_full_screen(batch, coordinator, site, client_for):
    batch = released(batch, coordinator)
    other = a_patient(coordinator, site, n=2)

    response = client_for(coordinator).post(_page(batch), _post(batch, wristband_scanned_code=other.wristband_code))

    assert response.status_code == 409
    html = response.content.decode()
    assert 'class="scan-blocked" role="alert"' in html
    assert "Wrong patient" in html
    assert not Infusion.objects.exists()


def test_the_right_bag_and_wristband_on_the_page_record_the_fraction(batch, coordinator, client_for):
    batch = released(batch, coordinator)

    response = client_for(coordinator).post(_page(batch), _post(batch), follow=True)

    html = response.content.decode()
    assert "Fraction 1 recorded and signed" in html
    assert Infusion.objects.get().fraction_number == 1
    assert "Signature valid" in html  # the manifestation in the fractions table
    assert coordinator.get_full_name() in html


def test_the_bag_scan_moves_to_the_wristband_then_to_the_password_which_submits(batch, coordinator, client_for):
    batch = released(batch, coordinator)
    html = client_for(coordinator).get(_page(batch)).content.decode()

    assert 'data-enter-next="id_wristband_scanned_code"' in html
    assert 'data-enter-next="id_password"' in html
    password = html[html.index('name="password"') - 200: html.index('name="password"') + 200]
    assert "data-enter-next" not in password


def test_a_wrong_password_on_the_page_records_nothing(batch, coordinator, client_for):
    batch = released(batch, coordinator)

    response = client_for(coordinator).post(_page(batch), _post(batch, password="not-my-password"))

    assert response.status_code == 200
    assert "signature was refused" in response.content.decode()
    assert not Infusion.objects.exists()


def test_the_infusion_is_signed_by_whoever_gave_it(batch, coordinator):
    """Giving the product is an act the person answers for (21 CFR 11.50): the record
    carries their signature, with its meaning, bound to what was recorded."""
    batch = released(batch, coordinator)

    infusion = _infuse(coordinator, batch, 1)

    signature = Signature.objects.get(object_id=str(infusion.pk), content_type__model="infusion")
    assert signature.signer == coordinator
    assert signature.meaning == Meaning.PERFORMED
    assert signature.content_hash == signable_hash(infusion)
    assert AuditEvent.objects.filter(action=Action.SIGN, object_type="batches.infusion",
                                     object_id=str(infusion.pk)).exists()


@pytest.mark.parametrize("password", ["wrong-password", "", "x\x00y", "p" * 5000, None])
def test_a_wrong_password_records_nothing_and_is_audited(batch, coordinator, password):
    batch = released(batch, coordinator)

    with pytest.raises(SignatureRefused):
        _infuse(coordinator, batch, 1, password=password)

    assert not Infusion.objects.exists()
    assert not CustodyEvent.objects.filter(step=CustodyStep.BEDSIDE).exists()
    assert AuditEvent.objects.filter(action=Action.SIGN_REFUSED, actor=coordinator).exists()


def test_a_wrong_patient_is_blocked_and_audited_even_with_a_wrong_password(batch, coordinator, site):
    """A mistyped password must not hide a chain-of-identity mismatch."""
    batch = released(batch, coordinator)
    someone_else = a_patient(coordinator, site, n=2)

    with pytest.raises(IdentityMismatch, match="Wrong patient"):
        _infuse(coordinator, batch, wristband=someone_else.wristband_code, password="wrong-password")

    assert not Infusion.objects.exists()
    assert AuditEvent.objects.filter(action=Action.BLOCKED, root_id=str(batch.donation_id)).exists()
    assert AuditEvent.objects.filter(action=Action.SIGN_REFUSED, actor=coordinator).exists()


def test_a_wrong_password_is_shown_at_the_password_field(batch, coordinator):
    batch = released(batch, coordinator)

    with pytest.raises(SignatureRefused) as refused:
        _infuse(coordinator, batch, 1, password="wrong-password")

    assert refused.value.field == "password"
