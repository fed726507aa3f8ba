"""Who may use which QC and release page at all.

A role that may never take an action is refused (403) before the page reads its form,
so the refusal never depends on what was typed. The services check the same
permissions again at the record's own site (see ``carmfg.accounts.permissions``).
"""

from __future__ import annotations

from django.utils.translation import gettext_noop

from carmfg.accounts.permissions import RoutePerm, SitePerm

QC = (SitePerm.QC,)
CERTIFY = (SitePerm.CERTIFY,)
SPEC_EDITORS = (SitePerm.QC, SitePerm.CERTIFY)
POST = ("POST",)

ROUTE_PERMS: dict[str, RoutePerm] = {
    "result_enter": RoutePerm(QC, gettext_noop("enter QC results"), POST),
    "samples_from_steps": RoutePerm(QC, gettext_noop("register QC samples"), POST),
    "sample_receive": RoutePerm(QC, gettext_noop("receive QC samples"), POST),
    "sample_register": RoutePerm(QC, gettext_noop("register QC samples"), POST),
    "sample_label": RoutePerm(QC, gettext_noop("print QC sample labels")),
    "sample_label_apply": RoutePerm(QC, gettext_noop("apply QC sample labels"), POST),
    "result_review": RoutePerm(QC, gettext_noop("review QC results"), POST),
    "result_invalidate": RoutePerm(QC, gettext_noop("invalidate QC results"), POST),
    "oos": RoutePerm(QC, gettext_noop("conclude OOS investigations"), POST),
    "specification_action": RoutePerm(SPEC_EDITORS, gettext_noop("edit specifications"), POST),
    "specification_test_action": RoutePerm(SPEC_EDITORS, gettext_noop("edit specifications"), POST),
    "certify": RoutePerm(CERTIFY, gettext_noop("certify batches"), POST),
    "reject": RoutePerm(CERTIFY, gettext_noop("reject batches"), POST),
    "record_export": RoutePerm((SitePerm.AUDIT,), gettext_noop("export batch records"), POST),
}
