"""A minimal signable GMP record, for testing the generic audit and signature
mechanisms before (and independently of) the domain models.

The table is created once per test database by ``tests/carmfg/conftest.py``.
Its update service follows the pattern every real service follows.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import models, transaction

from carmfg.audit.models import Action
from carmfg.audit.services import audit_record, diff_fields
from carmfg.esign.services import signatures_void_changed
from carmfg.textinput import clean_text


class SignableNote(models.Model):
    objects: models.Manager[SignableNote] = models.Manager()

    site = models.ForeignKey("accounts.Site", on_delete=models.PROTECT, related_name="+")
    text = models.CharField(max_length=200)
    volume_ml = models.DecimalField(max_digits=8, decimal_places=2)

    class Meta:
        app_label = "esign"
        db_table = "test_signable_note"

    def __str__(self) -> str:
        return f"note {self.pk}"

    def signable_content(self) -> dict:
        return {"text": self.text, "volume_ml": self.volume_ml}


def note_create(*, actor, site, text: str, volume_ml: Decimal) -> SignableNote:
    with transaction.atomic():
        note = SignableNote.objects.create(site=site, text=clean_text(text, field="Text", max_length=200), volume_ml=volume_ml)
        audit_record(actor=actor, action=Action.CREATE, obj=note, changes=note.signable_content())
    return note


def note_update(*, actor, note: SignableNote, reason: str, **values) -> SignableNote:
    with transaction.atomic():
        note = SignableNote.objects.select_for_update().get(pk=note.pk)
        before = note.signable_content()
        for key, value in values.items():
            setattr(note, key, value)
        note.save()
        audit_record(actor=actor, action=Action.UPDATE, obj=note, changes=diff_fields(before, note.signable_content()), reason=reason)
        signatures_void_changed(actor=actor, obj=note, reason="The signed content changed: " + reason)
    return note
