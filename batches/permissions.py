"""Who may use which page of manufacturing and the chain of identity at all.

A role that may never take an action is refused (403) before the page reads its form,
so the refusal never depends on what was typed. The services check the same
permissions again at the record's own site (see ``carmfg.accounts.permissions``).
"""

from __future__ import annotations

from batches.services.custody import SCAN_PERMS
from batches.services.deviations import INVESTIGATOR_PERMS
from batches.services.labels import LABEL_PERMS
from carmfg.accounts.permissions import RoutePerm, SitePerm

EXECUTE = (SitePerm.EXECUTE,)
ADMIN = (SitePerm.ADMIN,)
POST = ("POST",)

ROUTE_PERMS: dict[str, RoutePerm] = {
    "batch_start": RoutePerm(EXECUTE, "start manufacturing", POST),
    "batch_complete": RoutePerm(EXECUTE, "complete batches", POST),
    "batch_hold": RoutePerm((SitePerm.EXECUTE, SitePerm.CERTIFY), "put batches on hold", POST),
    "batch_resume": RoutePerm((SitePerm.CERTIFY,), "resume batches on hold", POST),
    "step_record": RoutePerm(EXECUTE, "record manufacturing steps", POST),
    "step_verify": RoutePerm((SitePerm.VERIFY,), "verify steps", POST),
    "step_correct": RoutePerm(EXECUTE, "correct manufacturing steps", POST),
    "request_use": RoutePerm(INVESTIGATOR_PERMS, "raise deviations", POST),
    "deviation_new": RoutePerm(INVESTIGATOR_PERMS, "raise deviations"),
    "deviation_detail": RoutePerm(INVESTIGATOR_PERMS, "edit deviations", POST),
    "deviation_approve_use": RoutePerm((SitePerm.CERTIFY,), "approve deviations", POST),
    "deviation_close": RoutePerm((SitePerm.CERTIFY,), "close deviations", POST),
    "mbr_edit": RoutePerm(ADMIN, "edit master batch records"),
    "mbr_clone": RoutePerm(ADMIN, "edit master batch records", POST),
    "mbr_stage_new": RoutePerm(ADMIN, "edit master batch records", POST),
    "mbr_step_new": RoutePerm(ADMIN, "edit master batch records"),
    "mbr_step_edit": RoutePerm(ADMIN, "edit master batch records"),
    "mbr_step_move": RoutePerm(ADMIN, "edit master batch records", POST),
    "mbr_step_delete": RoutePerm(ADMIN, "edit master batch records", POST),
    "lot_list": RoutePerm(ADMIN, "register material lots", POST),
    "lot_release": RoutePerm((SitePerm.CERTIFY, SitePerm.ADMIN), "release material lots", POST),
    "lot_reject": RoutePerm((SitePerm.CERTIFY, SitePerm.ADMIN), "reject material lots", POST),
    "equipment_list": RoutePerm(ADMIN, "register equipment", POST),
    "equipment_edit": RoutePerm(ADMIN, "maintain equipment"),
    "patient_create": RoutePerm((SitePerm.PATIENTS,), "register patients"),
    "patient_edit": RoutePerm((SitePerm.PATIENTS,), "change patients"),
    "order_create": RoutePerm((SitePerm.PATIENTS,), "register orders"),
    "order_edit": RoutePerm((SitePerm.PATIENTS,), "change orders"),
    "collection_register": RoutePerm((SitePerm.PATIENTS,), "register collections", POST),
    "labels_print": RoutePerm(LABEL_PERMS, "print labels", POST),
    "label_apply": RoutePerm(LABEL_PERMS, "apply labels", POST),
    "label_destroy": RoutePerm(LABEL_PERMS, "destroy labels"),
    "custody_scan": RoutePerm(SCAN_PERMS, "record custody scans"),
    "intake_record": RoutePerm(EXECUTE, "record apheresis intake"),
    "order_cancel": RoutePerm((SitePerm.PATIENTS,), "cancel orders", POST),
    "intake_criteria_edit": RoutePerm(ADMIN, "change intake acceptance criteria", POST),
}
