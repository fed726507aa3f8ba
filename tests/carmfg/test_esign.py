"""Electronic signatures: Part 11 §11.50 (manifestation), §11.70 (linking), §11.200 (components)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.template import Context, Template
from django.test import RequestFactory
from hypothesis import given
from hypothesis import strategies as st

from carmfg.audit.models import Action, AuditEvent
from carmfg.canonical import content_hash
from carmfg.esign.exceptions import AlreadySigned, SegregationOfDuties, SignatureRefused
from carmfg.esign.models import Meaning, Signature
from carmfg.esign.selectors import signatures_for_record
from carmfg.esign.services import Reauthentication, signature_apply, signature_sign
from tests.carmfg.signable import note_create, note_update
from tests.conftest import PASSWORD


@pytest.fixture
def note(site, technician):
    return note_create(actor=technician, site=site, text="CD3+ count", volume_ml=Decimal("150.00"))


def test_a_signature_binds_signer_meaning_time_and_content_hash(note, technician):
    sig = signature_sign(actor=technician, obj=note, meaning=Meaning.PERFORMED, password=PASSWORD)
    assert sig.signer == technician
    assert sig.signer_name == "Irina Sokolova"
    assert sig.content_hash == content_hash({"text": "CD3+ count", "volume_ml": Decimal("150.00")})
    assert sig.audit_event.action == Action.SIGN
    assert sig.audit_event.changes["meaning"] == "performed"
    assert sig.signed_at == sig.audit_event.occurred_at
    assert [v.status for v in signatures_for_record(note)] == ["valid"]


def test_a_signature_with_a_wrong_password_is_refused_and_audited(note, technician):
    with pytest.raises(SignatureRefused, match="password"):
        signature_sign(actor=technician, obj=note, meaning=Meaning.PERFORMED, password="not-my-password")
    assert not Signature.objects.exists()
    refusal = AuditEvent.objects.get(action=Action.SIGN_REFUSED)
    assert refusal.actor == technician
    assert refusal.object_id == str(note.pk)


@pytest.mark.parametrize("password", ["", "\x00" + PASSWORD, "x" * 1_000_000, None])
def test_malformed_passwords_are_refused_cleanly(note, technician, password):
    with pytest.raises(SignatureRefused):
        signature_sign(actor=technician, obj=note, meaning=Meaning.PERFORMED, password=password)
    assert not Signature.objects.exists()


def test_failed_signing_attempts_count_towards_lockout(note, technician, client, settings):
    request = RequestFactory().post("/sign", REMOTE_ADDR="10.1.1.1")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        with pytest.raises(SignatureRefused):
            signature_sign(actor=technician, obj=note, meaning=Meaning.PERFORMED, password="wrong", request=request)
    # Now even the right password is refused, at signing and at login from that workstation.
    with pytest.raises(SignatureRefused, match="locked"):
        signature_sign(actor=technician, obj=note, meaning=Meaning.PERFORMED, password=PASSWORD,
                       request=RequestFactory().post("/sign", REMOTE_ADDR="10.1.1.1"))
    response = client.post("/accounts/login/", {"username": "tech", "password": PASSWORD}, REMOTE_ADDR="10.1.1.1")
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session


def test_performer_cannot_verify_own_record(note, technician, verifier):
    signature_sign(actor=technician, obj=note, meaning=Meaning.PERFORMED, password=PASSWORD)
    with pytest.raises(SegregationOfDuties, match="different person"):
        signature_sign(actor=technician, obj=note, meaning=Meaning.VERIFIED, password=PASSWORD)
    sig = signature_sign(actor=verifier, obj=note, meaning=Meaning.VERIFIED, password=PASSWORD)
    assert sig.signer == verifier


def test_a_rule_can_exclude_named_signers(note, qp):
    with pytest.raises(SegregationOfDuties, match="manufactured"):
        signature_sign(actor=qp, obj=note, meaning=Meaning.RELEASED, password=PASSWORD,
                       excluded_signers=[qp.pk], excluded_reason="You manufactured this batch.")


def test_editing_signed_data_voids_the_signature_visibly(note, technician, verifier):
    signature_sign(actor=technician, obj=note, meaning=Meaning.PERFORMED, password=PASSWORD)
    signature_sign(actor=verifier, obj=note, meaning=Meaning.VERIFIED, password=PASSWORD)
    note_update(actor=technician, note=note, volume_ml=Decimal("149.00"), reason="transcription error")

    views = signatures_for_record(note)
    assert [v.status for v in views] == ["voided", "voided"]
    assert AuditEvent.objects.filter(action=Action.VOID, object_id=str(note.pk)).count() == 2
    html = Template("{% load esign_tags %}{% signature_manifest v site %}").render(
        Context({"v": views[0], "site": note.site})
    )
    assert "Voided" in html
    # The record needs signing again, and can be.
    signature_sign(actor=technician, obj=note, meaning=Meaning.PERFORMED, password=PASSWORD)
    assert [v.status for v in signatures_for_record(note, include_voided=False)] == ["valid"]


def test_a_change_made_behind_the_services_back_shows_the_signature_invalid(note, technician):
    signature_sign(actor=technician, obj=note, meaning=Meaning.PERFORMED, password=PASSWORD)
    type(note).objects.filter(pk=note.pk).update(volume_ml=Decimal("1.00"))
    note.refresh_from_db()
    assert [v.status for v in signatures_for_record(note)] == ["invalidated"]


def test_one_active_signature_per_record_and_meaning(note, technician):
    sig = signature_sign(actor=technician, obj=note, meaning=Meaning.PERFORMED, password=PASSWORD)
    with pytest.raises(AlreadySigned):
        signature_sign(actor=technician, obj=note, meaning=Meaning.PERFORMED, password=PASSWORD)
    duplicate = Signature(
        content_type=sig.content_type, object_id=sig.object_id, site=sig.site, meaning=sig.meaning,
        signer=sig.signer, signer_name="x", signed_at=sig.signed_at, content_hash=sig.content_hash,
        audit_event=AuditEvent.objects.filter(action=Action.CREATE).first(),
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        duplicate.save()


def test_signing_needs_a_fresh_reauthentication_of_the_same_person(note, technician, verifier):
    stale = Reauthentication(user_id=technician.pk, at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
    with pytest.raises(SignatureRefused, match="again"), transaction.atomic():
        signature_apply(actor=technician, reauth=stale, obj=note, meaning=Meaning.PERFORMED)
    someone_else = Reauthentication(user_id=verifier.pk, at=dt.datetime.now(dt.UTC))
    with pytest.raises(SignatureRefused), transaction.atomic():
        signature_apply(actor=technician, reauth=someone_else, obj=note, meaning=Meaning.PERFORMED)


def test_manifestation_shows_printed_name_utc_and_local_time_and_meaning(note, technician):
    sig = signature_sign(actor=technician, obj=note, meaning=Meaning.PERFORMED, password=PASSWORD)
    html = Template("{% load esign_tags %}{% signature_manifest v site %}").render(
        Context({"v": signatures_for_record(note)[0], "site": note.site})
    )
    local = sig.signed_at.astimezone(note.site.zone)
    assert "Irina Sokolova" in html
    assert "Performed" in html
    assert f"{sig.signed_at.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S} UTC" in html
    assert f"{local:%Y-%m-%d %H:%M:%S} (Europe/Moscow)" in html
    assert "Signature valid" in html


# --- Canonical serialisation: the hash means the content --------------------------

json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**53), max_value=2**53), st.text(max_size=20),
    st.decimals(allow_nan=False, allow_infinity=False, places=3, min_value=-10**6, max_value=10**6),
)
records = st.dictionaries(st.text(min_size=1, max_size=10), json_scalars, min_size=1, max_size=8)


@given(records, st.randoms())
def test_same_content_in_any_key_order_gives_the_same_hash(record, rnd):
    keys = list(record)
    rnd.shuffle(keys)
    assert content_hash({k: record[k] for k in keys}) == content_hash(record)


@given(records, st.data())
def test_any_change_of_content_gives_a_different_hash(record, data):
    key = data.draw(st.sampled_from(sorted(record)))
    new_value = data.draw(json_scalars.filter(lambda v: content_hash({"v": v}) != content_hash({"v": record[key]})))
    changed = {**record, key: new_value}
    assert content_hash(changed) != content_hash(record)
    renamed = {**{k: v for k, v in record.items() if k != key}, key + "_": record[key]}
    assert content_hash(renamed) != content_hash(record)
