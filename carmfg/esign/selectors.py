from __future__ import annotations

from dataclasses import dataclass

from django.contrib.contenttypes.models import ContentType
from django.db.models import Model

from carmfg.esign.models import Signature
from carmfg.esign.services import signable_hash


@dataclass(frozen=True)
class SignatureView:
    signature: Signature
    status: str  # "valid", "invalidated" (content changed, not yet voided), "voided"

    @property
    def is_valid(self) -> bool:
        return self.status == "valid"


def signatures_for_record(obj: Model, *, include_voided: bool = True) -> list[SignatureView]:
    """Signatures of ``obj`` with their validity against the record's current content."""
    current = signable_hash(obj)
    qs = Signature.objects.filter(
        content_type=ContentType.objects.get_for_model(obj), object_id=str(obj.pk)
    ).select_related("signer")
    if not include_voided:
        qs = qs.filter(voided_at__isnull=True)
    views = []
    for sig in qs:
        if sig.voided_at is not None:
            status = "voided"
        elif sig.content_hash != current:
            status = "invalidated"
        else:
            status = "valid"
        views.append(SignatureView(signature=sig, status=status))
    return views
