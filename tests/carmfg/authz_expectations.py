"""Who may reach what: the expectations of the authorisation matrix, in one place.

Every URL pattern of the project (pages and ``/api/v1/``) has an entry in ``ROUTES``,
keyed by its URL name. ``tests/carmfg/test_authz_matrix.py`` discovers the routes from
the URL resolver and fails for any route without an entry, so adding a page or an API
route means adding one line here. For each method the view accepts, say which roles
get through (``ALLOWED``: the view's own logic ran, including a 400/409 for the empty
body the matrix sends); every other signed-in role gets ``denied`` (403 by default).

Fixed rules, applied by ``Expect.outcome`` to every route:

* anonymous: sent to the login page (pages) or 401/403 (API), whatever the method;
* a record of another site: 404 for every role and method the view accepts (except
  that a route marked ``role_first`` refuses a role it never serves with its 403 first:
  the 403 says nothing about the record);
* a method the view does not accept (``NOT_ACCEPTED``): 405.

Object kwargs are filled from records built for each site (``authz_objects.py``);
``DEFAULT_SOURCES`` maps the usual kwarg names, ``objects=`` names the rest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests.carmfg.authz_matrix import ALLOWED, FORBIDDEN, LOGIN, NOT_ALLOWED, NOT_FOUND

ROLES = ("technician", "verifier", "qc_analyst", "qc_reviewer", "qp", "coordinator", "auditor", "site_admin")

EVERYONE = frozenset(ROLES)
NOBODY: frozenset[str] = frozenset()
# Role groups, after carmfg.accounts.permissions.ROLE_PERMISSIONS (the verifier
# persona is technician + verifier, as on the floor; qc_reviewer is a second QC analyst).
EXECUTE = frozenset({"technician", "verifier"})
QC = frozenset({"qc_analyst", "qc_reviewer"})
QP = frozenset({"qp"})
COORDINATOR = frozenset({"coordinator"})
ADMIN = frozenset({"site_admin"})
AUDIT = frozenset({"qp", "auditor"})
INVESTIGATORS = EXECUTE | QC | QP  # who may raise and edit deviations


@dataclass(frozen=True)
class Fixed:
    """A kwarg that is not a record: the same literal on both sites."""

    value: str


@dataclass(frozen=True)
class Allow:
    """The roles that get through; the others get ``denied``."""

    roles: frozenset[str]
    denied: str = FORBIDDEN


NOT_ACCEPTED = Allow(NOBODY, denied=NOT_ALLOWED)

DEFAULT_SOURCES: dict[str, str | Fixed] = {
    "step_pk": "step",
    "record_pk": "record",
    "stage_pk": "stage",
    "batch_pk": "batch",
    "token_key": "token",
    "fmt": Fixed("csv"),
    "format": Fixed("json"),
}


def _access(value: Allow | frozenset[str] | None) -> Allow | None:
    if value is None or isinstance(value, Allow):
        return value
    return Allow(frozenset(value))


@dataclass(frozen=True)
class Expect:
    get: Allow | frozenset[str] | None = None
    post: Allow | frozenset[str] | None = None
    put: Allow | frozenset[str] | None = None
    patch: Allow | frozenset[str] | None = None
    delete: Allow | frozenset[str] | None = None
    objects: dict[str, str | Fixed] = field(default_factory=dict)
    anonymous: str | dict[str, str] = LOGIN
    # False for a route whose kwargs are not site records (e.g. a file format).
    site_scoped: bool = True
    # True where the route refuses a role before it looks the record up (batches/permissions.py,
    # qc/permissions.py): a denied role then gets its 403 on another site's record too.
    role_first: bool = False

    def access(self, method: str) -> Allow | None:
        return _access(getattr(self, method))

    def source_of(self, kwarg: str) -> str | Fixed | None:
        return self.objects.get(kwarg) or DEFAULT_SOURCES.get(kwarg)

    def value_for(self, kwarg: str, records: dict[str, Any]) -> Any:
        source = self.source_of(kwarg)
        if isinstance(source, Fixed):
            return source.value
        assert source is not None
        return records[source]

    def outcome(self, method: str, who: str, side: str) -> str | None:
        access = self.access(method)
        if access is None:
            return None
        if who == "anonymous":
            return self.anonymous if isinstance(self.anonymous, str) else self.anonymous[method]
        if access is NOT_ACCEPTED or access.denied == NOT_ALLOWED:
            return NOT_ALLOWED
        if side == "other":
            return access.denied if self.role_first and who not in access.roles else NOT_FOUND
        return ALLOWED if who in access.roles else access.denied


GET_ONLY = {"post": NOT_ACCEPTED}
POST_ONLY = {"get": NOT_ACCEPTED}


def page(roles: frozenset[str] | Allow = EVERYONE, **kw: Any) -> Expect:
    """A read-only page (GET only)."""
    return Expect(get=roles, post=NOT_ACCEPTED, **kw)


def view(roles: frozenset[str] | Allow = EVERYONE, **kw: Any) -> Expect:
    """A read-only page that also answers POST with the same page (no decorator limits it)."""
    return Expect(get=roles, post=roles, **kw)


def action(roles: frozenset[str] | Allow, **kw: Any) -> Expect:
    """A POST-only action."""
    return Expect(get=NOT_ACCEPTED, post=roles, **kw)


def guarded(roles: frozenset[str], **kw: Any) -> Expect:
    """A POST-only action whose route refuses other roles before anything else (403)."""
    return Expect(get=NOT_ACCEPTED, post=roles, role_first=True, **kw)


def form(get: frozenset[str] | Allow, post: frozenset[str] | Allow | None = None, **kw: Any) -> Expect:
    """A page with a form posting to itself."""
    return Expect(get=get, post=get if post is None else post, **kw)


ROUTES: dict[str, Expect] = {
    # --- shell and accounts -------------------------------------------------------------
    "home": view(),
    "login": Expect(get=EVERYONE, post=EVERYONE, anonymous=ALLOWED),
    # Signing out lands on the login page, signed in or not.
    "logout": Expect(get=NOT_ACCEPTED, post=Allow(NOBODY, denied=LOGIN),
                     anonymous={"get": NOT_ALLOWED, "post": LOGIN}),
    "password_change": form(EVERYONE),
    "profile": form(EVERYONE),
    # The body names no site: 404 (the site the user may switch to is tested in test_accounts).
    "site_switch": action(Allow(NOBODY, denied=NOT_FOUND)),
    "site_detail": view(objects={"pk": "site"}),
    "api_tokens": form(EVERYONE),
    # A token is its owner's alone (the technician's here): anyone else is told it does not exist.
    "api_token_revoke": action(Allow(frozenset({"technician"}), denied=NOT_FOUND)),
    "healthz": Expect(get=EVERYONE, post=EVERYONE, anonymous=ALLOWED),
    # --- audit trail ---------------------------------------------------------------------
    # Without the audit permission the trail is not even said to exist.
    "audit_list": view(Allow(AUDIT, denied=NOT_FOUND)),
    "audit_export": view(Allow(AUDIT, denied=NOT_FOUND), site_scoped=False),
    # --- manufacturing ---------------------------------------------------------------------
    "batches:index": page(),
    "batches:batch_detail": page(objects={"pk": "batch"}),
    "batches:batch_start": guarded(EXECUTE, objects={"pk": "batch"}),
    "batches:batch_complete": guarded(EXECUTE, objects={"pk": "batch"}),
    "batches:batch_hold": guarded(EXECUTE | QP, objects={"pk": "batch"}),
    "batches:batch_resume": guarded(QP, objects={"pk": "batch"}),
    "batches:step_record": guarded(EXECUTE, objects={"pk": "batch"}),
    # Asking for a deviation to use a refused lot: anyone who may raise deviations.
    "batches:request_use": guarded(INVESTIGATORS, objects={"pk": "batch"}),
    "batches:step_verify": guarded(frozenset({"verifier"}), objects={"pk": "batch"}),
    "batches:step_correct": guarded(EXECUTE, objects={"pk": "batch"}),
    "batches:deviation_list": page(),
    "batches:deviation_new": form(INVESTIGATORS, role_first=True),
    "batches:deviation_detail": form(EVERYONE, INVESTIGATORS, objects={"pk": "deviation"}, role_first=True),
    "batches:deviation_approve_use": guarded(QP, objects={"pk": "deviation"}),
    "batches:deviation_close": guarded(QP, objects={"pk": "deviation"}),
    "batches:mbr_list": page(),
    "batches:mbr_detail": page(objects={"pk": "mbr"}),
    "batches:mbr_edit": form(ADMIN, objects={"pk": "mbr"}, role_first=True),
    "batches:mbr_clone": guarded(ADMIN, objects={"pk": "mbr"}),
    "batches:mbr_approve": action(ADMIN | QP, objects={"pk": "mbr"}),
    "batches:mbr_make_effective": action(ADMIN | QP, objects={"pk": "mbr"}),
    "batches:mbr_stage_new": guarded(ADMIN, objects={"pk": "mbr"}),
    "batches:mbr_step_new": form(ADMIN, objects={"pk": "mbr"}, role_first=True),
    "batches:mbr_step_edit": form(ADMIN, objects={"pk": "mbr", "step_pk": "mbr_step"}, role_first=True),
    "batches:mbr_step_move": guarded(ADMIN, objects={"pk": "mbr", "step_pk": "mbr_step"}),
    "batches:mbr_step_delete": guarded(ADMIN, objects={"pk": "mbr", "step_pk": "mbr_step"}),
    "batches:lot_list": form(EVERYONE, ADMIN, role_first=True),
    "batches:lot_release": guarded(QP | ADMIN, objects={"pk": "lot"}),
    "batches:lot_reject": guarded(QP | ADMIN, objects={"pk": "lot"}),
    "batches:equipment_list": form(EVERYONE, ADMIN, role_first=True),
    "batches:equipment_edit": form(ADMIN, objects={"pk": "equipment"}, role_first=True),
    # --- chain of identity -------------------------------------------------------------------
    "batches:patient_list": view(),
    "batches:patient_create": form(COORDINATOR, role_first=True),
    "batches:patient_detail": view(objects={"pk": "patient"}),
    "batches:patient_edit": form(COORDINATOR, objects={"pk": "patient"}, role_first=True),
    "batches:order_create": form(COORDINATOR, objects={"pk": "patient"}, role_first=True),
    "batches:order_list": view(),
    "batches:order_detail": view(objects={"pk": "order"}),
    "batches:order_edit": form(COORDINATOR, objects={"pk": "order"}, role_first=True),
    "batches:order_cancel": guarded(COORDINATOR, objects={"pk": "order"}),
    "batches:intake_criteria": view(),
    "batches:intake_criteria_edit": guarded(ADMIN, objects={"pk": "product"}),
    "batches:collection_register": guarded(COORDINATOR, objects={"pk": "order"}),
    "batches:labels_print": guarded(COORDINATOR | EXECUTE, objects={"pk": "donation"}),
    "batches:label_apply": guarded(COORDINATOR | EXECUTE, objects={"pk": "label"}),
    "batches:label_destroy": form(COORDINATOR | EXECUTE, objects={"pk": "label"}, role_first=True),
    "batches:custody_steps": view(objects={"pk": "donation"}),
    # QC scans the sample hand-over: QC analysts scan too.
    "batches:custody_scan": form(COORDINATOR | EXECUTE | QC, objects={"pk": "donation", "step": Fixed("receipt")},
                                 role_first=True),
    # A donation whose bag arrived and has no intake yet.
    "batches:intake_record": form(EXECUTE, objects={"pk": "donation_awaiting_intake"}, role_first=True),
    "batches:intake_detail": form(EVERYONE, QP, objects={"pk": "intake"}),
    # Everyone of the site reads the corrections; only those who record intakes correct one.
    "batches:intake_correct": form(EVERYONE, EXECUTE, objects={"pk": "intake"}, role_first=True),
    # Everyone sees the infusions given; only the coordinator records one.
    "batches:infusion_record": form(EVERYONE, COORDINATOR),
    "batches:coi_timeline": view(objects={"pk": "donation"}),
    "batches:coi_batch": view(objects={"pk": "batch"}),
    # --- QC and release -----------------------------------------------------------------------
    "qc:index": view(),
    "qc:batch": view(objects={"pk": "batch"}),
    "qc:result_enter": guarded(QC, objects={"pk": "batch"}),
    "qc:samples_from_steps": guarded(QC, objects={"pk": "batch"}),
    "qc:sample_receive": guarded(QC, objects={"pk": "sample"}),
    "qc:sample_register": guarded(QC, objects={"pk": "batch"}),
    "qc:sample_label": form(QC, objects={"pk": "sample"}, role_first=True),
    "qc:sample_label_apply": guarded(QC, objects={"pk": "sample"}),
    "qc:result_review": guarded(QC, objects={"pk": "result"}),
    "qc:result_invalidate": guarded(QC, objects={"pk": "result"}),
    "qc:oos": form(EVERYONE, QC, objects={"pk": "oos"}, role_first=True),
    "qc:specifications": view(),
    "qc:specification": view(objects={"pk": "specification"}),
    "qc:specification_action": guarded(QC | QP, objects={"pk": "specification", "action": Fixed("clone")}),
    "qc:specification_test_action": guarded(QC | QP, objects={"pk": "spec_test", "action": Fixed("edit")}),
    "qc:alerts": view(),
    # An alert is its recipient's (the QP here).
    "qc:alert_acknowledge": action(Allow(QP, denied=NOT_FOUND), objects={"pk": "alert"}),
    # Anyone at the site may read the release queue and a batch's release page; only a QP signs.
    "qc:release": view(),
    "qc:batch_release": view(objects={"pk": "batch"}),
    "qc:certify": guarded(QP, objects={"pk": "batch"}),
    "qc:reject": guarded(QP, objects={"pk": "batch"}),
    # Checking a PDF against the records issued is for those who may read the audit trail.
    "qc:record_verify": form(Allow(AUDIT, denied=NOT_FOUND)),
    "qc:records_panel": page(objects={"pk": "batch"}),
    # The matrix's record is requested, not signed: not downloadable by anyone yet.
    "qc:record_download": page(Allow(NOBODY, denied=NOT_FOUND), objects={"pk": "document"}),
    "qc:record_export": guarded(AUDIT, objects={"pk": "batch"}),
    # The vein-to-vein dashboard of the current site (qc/views/dashboard.py).
    "qc:dashboard": page(COORDINATOR | QP | ADMIN),
    # --- API, documentation ----------------------------------------------------------------
    # The schema describes the API, not anyone's data: public, like the login page.
    "api-schema": Expect(get=EVERYONE, anonymous=ALLOWED),
    "api-docs": Expect(get=EVERYONE, anonymous=ALLOWED),
    # --- REST API v1 (batches/api, qc/api, carmfg/audit/api.py) ---------------------------------
    # Reads: everyone at the site; writes: the roles of the service the API calls (a role
    # that may never act gets 403 before its body is read). Records of other sites: 404.
    "api-sites": Expect(get=EVERYONE, post=NOT_ACCEPTED, site_scoped=False),
    "api-patients": Expect(get=EVERYONE, post=COORDINATOR, site_scoped=False),
    "api-patient": Expect(get=EVERYONE, patch=COORDINATOR, post=NOT_ACCEPTED, objects={"pk": "patient"}),
    "api-orders": Expect(get=EVERYONE, post=COORDINATOR, site_scoped=False),
    "api-order": Expect(get=EVERYONE, patch=COORDINATOR, post=NOT_ACCEPTED, objects={"pk": "order"}),
    "api-batches": Expect(get=EVERYONE, post=NOT_ACCEPTED, site_scoped=False),
    "api-batch": Expect(get=EVERYONE, post=NOT_ACCEPTED, objects={"pk": "batch"}),
    "api-batch-timeline": Expect(get=EVERYONE, post=NOT_ACCEPTED, objects={"pk": "batch"}),
    "api-batch-steps": Expect(get=EVERYONE, post=EXECUTE, objects={"pk": "batch"}),
    "api-step-record": Expect(get=EVERYONE, post=NOT_ACCEPTED, objects={"pk": "record"}),
    "api-step-record-verify": action(frozenset({"verifier"}), objects={"pk": "record"}),
    "api-custody-events": Expect(get=EVERYONE, post=COORDINATOR | EXECUTE | QC, objects={"pk": "donation"}),
    "api-deviations": Expect(get=EVERYONE, post=EXECUTE | QC | QP, site_scoped=False),
    "api-deviation": Expect(get=EVERYONE, post=NOT_ACCEPTED, objects={"pk": "deviation"}),
    "api-batch-qc-results": Expect(get=EVERYONE, post=QC, objects={"pk": "batch"}),
    "api-qc-result": Expect(get=EVERYONE, post=NOT_ACCEPTED, objects={"pk": "result"}),
    "api-qc-result-review": action(QC, objects={"pk": "result"}),
    "api-batch-certifications": Expect(get=EVERYONE, post=NOT_ACCEPTED, objects={"pk": "batch"}),
    # Signed records: listed (empty for others) and requested by QPs and auditors; one record
    # is not found for anyone else; the matrix's record is not signed yet, so no download.
    "api-batch-records": Expect(get=EVERYONE, post=AUDIT, objects={"pk": "batch"}),
    "api-batch-record": Expect(get=Allow(AUDIT, denied=NOT_FOUND), post=NOT_ACCEPTED, objects={"pk": "document"}),
    "api-batch-record-download": Expect(get=Allow(NOBODY, denied=NOT_FOUND), post=NOT_ACCEPTED,
                                        objects={"pk": "document"}),
    "api-audit-events": Expect(get=AUDIT, post=NOT_ACCEPTED, site_scoped=False),
    # Any other path under /api/v1/ is a problem-details 404, for everyone.
    "api-not-found": Expect(get=Allow(NOBODY, denied=NOT_FOUND), post=Allow(NOBODY, denied=NOT_FOUND),
                            put=Allow(NOBODY, denied=NOT_FOUND), patch=Allow(NOBODY, denied=NOT_FOUND),
                            delete=Allow(NOBODY, denied=NOT_FOUND), objects={"rest": Fixed("no-such-resource/")},
                            anonymous=NOT_FOUND, site_scoped=False),
}

# Whole namespaces declared at once: Django's admin is for staff only (no persona is
# staff: every admin page sends them to the admin login).
NAMESPACES: dict[str, Expect] = {}

ROUTES["admin:login"] = Expect(get=EVERYONE, post=EVERYONE, anonymous=ALLOWED, site_scoped=False)
ROUTES["admin:logout"] = Expect(get=EVERYONE, post=EVERYONE, anonymous=ALLOWED, site_scoped=False)
NAMESPACES["admin"] = Expect(get=Allow(NOBODY, denied=LOGIN), post=Allow(NOBODY, denied=LOGIN),
                             objects={"object_id": Fixed("1"), "id": Fixed("1"), "content_type_id": Fixed("1"),
                                      "app_label": Fixed("auth")}, site_scoped=False)

# Patterns the matrix does not walk, with the reason.
IGNORED_PATTERNS: dict[str, str] = {
    r"admin/(?P<url>.*)$": "the admin's catch-all: answers any path the admin does not know",
}
IGNORED_UNNAMED_PREFIXES: dict[str, str] = {
    "admin/": "the admin's unnamed <object_id>/ redirects to the named change pages, covered above",
}


def is_ignored(name: str, pattern: str) -> bool:
    if pattern in IGNORED_PATTERNS:
        return True
    return not name and any(pattern.startswith(p) for p in IGNORED_UNNAMED_PREFIXES)


def expectation_for(name: str) -> Expect | None:
    if name in ROUTES:
        return ROUTES[name]
    namespace = name.split(":", 1)[0] if ":" in name else ""
    return NAMESPACES.get(namespace)
