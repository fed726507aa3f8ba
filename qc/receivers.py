"""A batch pins the specification in force when it is created.

`batches` must not import `qc` (dependencies point one way), so `qc` listens for new
batches. The receiver runs inside the transaction that creates the batch: without an
effective specification the creation fails, with a message saying what to do.
"""

from __future__ import annotations

from django.db.models.signals import post_save
from django.dispatch import receiver
from django.utils.translation import gettext_noop

from batches.models import Batch
from qc.exceptions import NotReady
from qc.models import BatchSpecification, Specification, SpecStatus


@receiver(post_save, sender=Batch, dispatch_uid="qc_pin_specification")
def pin_specification(sender, instance: Batch, created: bool, raw: bool = False, **kwargs) -> None:
    if not created or raw:
        return
    spec = Specification.objects.filter(product_id=instance.product_id, status=SpecStatus.EFFECTIVE).first()
    if spec is None:
        raise NotReady(
            gettext_noop("No effective specification exists for %(product)s: a qualified person must approve "
                         "one before a batch can be created."),
            params={"product": str(instance.product)}
        )
    BatchSpecification.objects.create(batch=instance, specification=spec)
