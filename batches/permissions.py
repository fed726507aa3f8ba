"""Who may use which page of manufacturing and the chain of identity at all.

A role that may never take an action is refused (403) before the page reads its form,
so the refusal never depends on what was typed. The services check the same
permissions again at the record's own site (see ``carmfg.accounts.permissions``).
"""

from __future__ import annotations

from django.utils.translation import gettext_noop

from batches.services.custody import SCAN_PERMS
from batches.services.deviations import INVESTIGATOR_PERMS
from batches.services.labels import LABEL_PERMS
from carmfg.accounts.permissions import RoutePerm, SitePerm

EXECUTE = (SitePerm.EXECUTE,)
ADMIN = (SitePerm.ADMIN,)
POST = ("POST",)

ROUTE_PERMS: dict[str, RoutePerm] = {
    "batch_start": RoutePerm(EXECUTE, gettext_noop("start manufacturing"), POST),
    "batch_complete": RoutePerm(EXECUTE, gettext_noop("complete batches"), POST),
    "batch_hold": RoutePerm((SitePerm.EXECUTE, SitePerm.CERTIFY), gettext_noop("put batches on hold"), POST),
    "batch_resume": RoutePerm((SitePerm.CERTIFY,), gettext_noop("resume batches on hold"), POST),
    "step_record": RoutePerm(EXECUTE, gettext_noop("record manufacturing steps"), POST),
    "step_verify": RoutePerm((SitePerm.VERIFY,), gettext_noop("verify steps"), POST),
    "step_correct": RoutePerm(EXECUTE, gettext_noop("correct manufacturing steps"), POST),
    "request_use": RoutePerm(INVESTIGATOR_PERMS, gettext_noop("raise deviations"), POST),
    "deviation_new": RoutePerm(INVESTIGATOR_PERMS, gettext_noop("raise deviations")),
    "deviation_detail": RoutePerm(INVESTIGATOR_PERMS, gettext_noop("edit deviations"), POST),
    "deviation_approve_use": RoutePerm((SitePerm.CERTIFY,), gettext_noop("approve deviations"), POST),
    "deviation_close": RoutePerm((SitePerm.CERTIFY,), gettext_noop("close deviations"), POST),
    "mbr_edit": RoutePerm(ADMIN, gettext_noop("edit master batch records")),
    "mbr_clone": RoutePerm(ADMIN, gettext_noop("edit master batch records"), POST),
    "mbr_stage_new": RoutePerm(ADMIN, gettext_noop("edit master batch records"), POST),
    "mbr_step_new": RoutePerm(ADMIN, gettext_noop("edit master batch records")),
    "mbr_step_edit": RoutePerm(ADMIN, gettext_noop("edit master batch records")),
    "mbr_step_move": RoutePerm(ADMIN, gettext_noop("edit master batch records"), POST),
    "mbr_step_delete": RoutePerm(ADMIN, gettext_noop("edit master batch records"), POST),
    "lot_list": RoutePerm(ADMIN, gettext_noop("register material lots"), POST),
    "lot_release": RoutePerm((SitePerm.CERTIFY, SitePerm.ADMIN), gettext_noop("release material lots"), POST),
    "lot_reject": RoutePerm((SitePerm.CERTIFY, SitePerm.ADMIN), gettext_noop("reject material lots"), POST),
    "equipment_list": RoutePerm(ADMIN, gettext_noop("register equipment"), POST),
    "equipment_edit": RoutePerm(ADMIN, gettext_noop("maintain equipment")),
    "patient_create": RoutePerm((SitePerm.PATIENTS,), gettext_noop("register patients")),
    "patient_edit": RoutePerm((SitePerm.PATIENTS,), gettext_noop("change patients")),
    "order_create": RoutePerm((SitePerm.PATIENTS,), gettext_noop("register orders")),
    "order_edit": RoutePerm((SitePerm.PATIENTS,), gettext_noop("change orders")),
    "collection_register": RoutePerm((SitePerm.PATIENTS,), gettext_noop("register collections"), POST),
    "labels_print": RoutePerm(LABEL_PERMS, gettext_noop("print labels"), POST),
    "label_apply": RoutePerm(LABEL_PERMS, gettext_noop("apply labels"), POST),
    "label_destroy": RoutePerm(LABEL_PERMS, gettext_noop("destroy labels")),
    "custody_scan": RoutePerm(SCAN_PERMS, gettext_noop("record custody scans")),
    "intake_record": RoutePerm(EXECUTE, gettext_noop("record apheresis intake")),
    "intake_correct": RoutePerm(EXECUTE, gettext_noop("correct apheresis intakes"), POST),
    "order_cancel": RoutePerm((SitePerm.PATIENTS,), gettext_noop("cancel orders"), POST),
    "intake_criteria_edit": RoutePerm(ADMIN, gettext_noop("change intake acceptance criteria"), POST),
}
