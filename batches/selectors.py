"""Reads of the `batches` app, scoped to the user's sites: a view cannot forget it.

Objects of other sites raise ``Http404``: their existence is not revealed.
"""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404

from batches.models import (
    Batch,
    Deviation,
    Donation,
    Equipment,
    MasterBatchRecord,
    MaterialLot,
    Order,
    Patient,
)
from carmfg.accounts.selectors import site_ids_for_user


def _scoped(qs: QuerySet, user) -> QuerySet:
    return qs.filter(site_id__in=site_ids_for_user(user))


def _get(qs: QuerySet, user, **lookup):
    obj = _scoped(qs, user).filter(**lookup).first()
    if obj is None:
        raise Http404("Not found.")
    return obj


def batch_list_for_user(user, *, site=None) -> QuerySet[Batch]:
    qs = _scoped(Batch.objects.select_related("site", "product", "order__patient", "donation", "mbr"), user)
    return qs.filter(site=site) if site is not None else qs


def batch_get_for_user(user, pk) -> Batch:
    return _get(Batch.objects.select_related("site", "product", "order__patient", "donation", "mbr"), user, pk=pk)


def patient_list_for_user(user, *, site=None) -> QuerySet[Patient]:
    qs = _scoped(Patient.objects.select_related("site"), user)
    return qs.filter(site=site) if site is not None else qs


def patient_get_for_user(user, pk) -> Patient:
    return _get(Patient.objects.select_related("site"), user, pk=pk)


def order_list_for_user(user, *, site=None) -> QuerySet[Order]:
    qs = _scoped(Order.objects.select_related("site", "patient", "product"), user)
    return qs.filter(site=site) if site is not None else qs


def order_get_for_user(user, pk) -> Order:
    return _get(Order.objects.select_related("site", "patient", "product"), user, pk=pk)


def donation_get_for_user(user, pk) -> Donation:
    return _get(Donation.objects.select_related("site", "order__patient", "order__product"), user, pk=pk)


def deviation_list_for_user(user, *, site=None) -> QuerySet[Deviation]:
    qs = _scoped(Deviation.objects.select_related("site", "batch", "raised_by"), user)
    return qs.filter(site=site) if site is not None else qs


def deviation_get_for_user(user, pk) -> Deviation:
    return _get(Deviation.objects.select_related("site", "batch", "raised_by"), user, pk=pk)


def mbr_list_for_user(user, *, site=None) -> QuerySet[MasterBatchRecord]:
    qs = _scoped(MasterBatchRecord.objects.select_related("site", "product"), user)
    return qs.filter(site=site) if site is not None else qs


def mbr_get_for_user(user, pk) -> MasterBatchRecord:
    return _get(MasterBatchRecord.objects.select_related("site", "product"), user, pk=pk)


def material_lot_list_for_user(user, *, site=None) -> QuerySet[MaterialLot]:
    qs = _scoped(MaterialLot.objects.select_related("site"), user)
    return qs.filter(site=site) if site is not None else qs


def equipment_list_for_user(user, *, site=None) -> QuerySet[Equipment]:
    qs = _scoped(Equipment.objects.select_related("site"), user)
    return qs.filter(site=site) if site is not None else qs


def mbr_effective_for(product) -> MasterBatchRecord | None:
    return MasterBatchRecord.objects.filter(product=product, status="effective").first()
