"""Release specifications: versioned per product.

Lifecycle draft → approved → effective → superseded. Only a draft is edited (by QC or a
QP); approval takes two signatures over the whole specification (its tests and
limits): "Reviewed" by a QC analyst, then "Approved" by a QP, two different people.
Making a version effective supersedes the one in force in the same transaction. A
batch keeps the version it was pinned to when it was created, so no change here
reaches a batch already made (see ``qc.receivers``).
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Max
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext_noop

from batches.models import Product
from batches.quantities import parse_decimal
from carmfg.accounts.permissions import SitePerm, has_site_perm, require_site_perm
from carmfg.audit.models import Action
from carmfg.audit.services import audit_record, diff_fields
from carmfg.esign.models import Meaning
from carmfg.esign.selectors import signatures_for_record
from carmfg.esign.services import signature_apply, signature_reauthenticate, signatures_void_changed
from carmfg.exceptions import PermissionRefused, StaleRecord
from carmfg.textinput import clean_text
from carmfg.texts import Lowered, Text, joined
from qc.exceptions import InvalidInput, InvalidTransition, NotReady
from qc.models import LimitType, QualitativeResult, Specification, SpecStatus, TestDefinition
from qc.spec_data import ARI_0001_LIKE, definition_rows

CODE_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
MAX_TESTS = 60
MAX_TURNAROUND_DAYS = 120
PASSING_RESULTS = ("no_growth", "not_detected", "conforms")
TEST_TEXT_FIELDS = {"name": 200, "method": 200, "unit": 40, "sample_type": 60}
TEST_FIELDS = ("code", "name", "method", "unit", "limit_type", "low", "high", "passing_result", "decimal_places",
               "composite_group", "required_for_provisional", "turnaround_days", "sample_type", "oos_deviation_class")
HEADER_FIELDS = ("title", "dose_min_cells_per_kg", "dose_max_cells_per_kg", "dose_tolerance_percent", "change_summary")
NUMERIC_LIMITS = {LimitType.AT_LEAST: ("low",), LimitType.MORE_THAN: ("low",), LimitType.AT_MOST: ("high",),
                  LimitType.LESS_THAN: ("high",), LimitType.RANGE: ("low", "high")}


def _require_editor(user, site) -> None:
    if not (has_site_perm(user, site, SitePerm.QC) or has_site_perm(user, site, SitePerm.CERTIFY)):
        raise PermissionRefused(gettext_noop("Your roles at %(site)s do not allow you to edit specifications."),
                                params={"site": str(site)})


# --- validation ---------------------------------------------------------------------------


def _as_bool(value, field: str) -> bool:
    if isinstance(value, bool):
        return value
    if value in ("on", "true", "1", 1, "yes"):
        return True
    if value in ("", "false", "0", 0, None, "off", "no"):
        return False
    raise InvalidInput(gettext_noop("%(field)s: expected yes or no."),
                       params={"field": field}, field=field)


def _whole(value, field: str, label: str, low: int, high: int) -> int:
    if isinstance(value, bool):
        raise InvalidInput(gettext_noop("%(label)s: expected a whole number from %(low)s to %(high)s."),
                           params={"label": label, "low": low, "high": high}, field=field)
    try:
        number = int(value if value not in (None, "") else 0)
    except (TypeError, ValueError):
        raise InvalidInput(gettext_noop("%(label)s: expected a whole number from %(low)s to %(high)s."),
                           params={"label": label, "low": low, "high": high}, field=field) from None
    if not low <= number <= high:
        raise InvalidInput(gettext_noop("%(label)s: expected a whole number from %(low)s to %(high)s."),
                           params={"label": label, "low": low, "high": high}, field=field)
    return number


def _limit(value, field: str) -> Decimal | None:
    if value is None or value == "":
        return None
    number = parse_decimal(value, field=field.capitalize())
    if abs(number) >= Decimal("1e17"):
        raise InvalidInput(gettext_noop("%(field)s: %(value)s is out of range."),
                           params={"field": field.capitalize(), "value": value}, field=field)
    return number


def clean_test_fields(values: dict[str, Any]) -> dict[str, Any]:
    """One test definition checked on its own: a limit type with the bounds it needs and
    no others, so a test can never be judged against a half-written limit."""
    unknown = set(values) - set(TEST_FIELDS)
    if unknown:
        raise InvalidInput(gettext_noop("Unknown test fields: %(fields)s."),
                           params={"fields": ', '.join(sorted(unknown))})
    out: dict[str, Any] = {}
    code = clean_text(values.get("code", ""), field=gettext_noop("Code"), max_length=40, required=True)
    if not CODE_RE.match(code):
        raise InvalidInput(gettext_noop("Code: use lower-case letters, digits, - and _ only."), field="code")
    out["code"] = code
    for name, max_length in TEST_TEXT_FIELDS.items():
        out[name] = clean_text(values.get(name, ""), field=name.replace("_", " ").capitalize(), max_length=max_length,
                               required=name in {"name", "method"})
    limit_type = values.get("limit_type", "")
    if limit_type not in LimitType.values:
        raise InvalidInput(gettext_noop("Limit type: %(limit_type)s is not a limit type."),
                           params={"limit_type": repr(limit_type)}, field="limit_type")
    out["limit_type"] = limit_type
    low, high = _limit(values.get("low"), "low"), _limit(values.get("high"), "high")
    needed = NUMERIC_LIMITS.get(LimitType(limit_type), ())
    for name, value in (("low", low), ("high", high)):
        if name in needed and value is None:
            raise InvalidInput(gettext_noop("%(kind)s: the %(name)s limit is required."),
                               params={"kind": Text(LimitType(limit_type).label), "name": name}, field=name)
        if name not in needed and value is not None:
            raise InvalidInput(gettext_noop("%(kind)s: leave the %(name)s limit empty."),
                               params={"kind": Text(LimitType(limit_type).label), "name": name}, field=name)
    if low is not None and high is not None and low > high:
        raise InvalidInput(gettext_noop("The low limit is above the high limit."), field="low")
    out["low"], out["high"] = low, high
    passing = values.get("passing_result") or ""
    if limit_type == LimitType.QUALITATIVE:
        if passing not in PASSING_RESULTS:
            raise InvalidInput(gettext_noop("Passing result: choose no growth, not detected or conforms."), field="passing_result")
        if out["unit"]:
            raise InvalidInput(gettext_noop("A qualitative test has no unit."), field="unit")
    elif passing:
        raise InvalidInput(gettext_noop("Only a qualitative test has a passing result."), field="passing_result")
    elif limit_type != LimitType.REPORT and not out["unit"]:
        # A value is only ever compared with a limit in the same unit AND basis.
        raise InvalidInput(gettext_noop("Unit: a numeric limit needs its unit and basis (e.g. '% of CD3+')."), field="unit")
    out["passing_result"] = passing
    out["decimal_places"] = _whole(values.get("decimal_places", 1), "decimal_places", "Decimal places", 0, 6)
    group = clean_text(values.get("composite_group", ""), field=gettext_noop("Composite group"), max_length=40)
    if group and not CODE_RE.match(group):
        raise InvalidInput(gettext_noop("Composite group: use lower-case letters, digits, - and _ only."), field="composite_group")
    if group and limit_type in (LimitType.REPORT,):
        raise InvalidInput(gettext_noop("A reported-only test cannot be part of a composite acceptance "
                                        "criterion."),
                           field="composite_group")
    out["composite_group"] = group
    out["required_for_provisional"] = _as_bool(values.get("required_for_provisional", False), "required_for_provisional")
    out["turnaround_days"] = _whole(values.get("turnaround_days", 0), "turnaround_days", "Turnaround (days)", 0,
                                    MAX_TURNAROUND_DAYS)
    oos_class = values.get("oos_deviation_class") or "major"
    if oos_class not in ("major", "critical"):
        raise InvalidInput(gettext_noop("Deviation class on failure: major or critical."), field="oos_deviation_class")
    out["oos_deviation_class"] = oos_class
    return out


def clean_header_fields(values: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"title": clean_text(values.get("title", ""), field=gettext_noop("Title"), max_length=200, required=True),
                           "change_summary": clean_text(values.get("change_summary", ""), field=gettext_noop("Change summary"),
                                                        max_length=5000)}
    for name, label in (("dose_min_cells_per_kg", "Minimum dose"), ("dose_max_cells_per_kg", "Maximum dose")):
        number = parse_decimal(values.get(name, ""), field=label)
        if number <= 0 or number >= Decimal("1e17") or number != number.to_integral_value():
            raise InvalidInput(gettext_noop("%(label)s: a whole number of CAR+ cells per kg, more than 0."),
                               params={"label": label}, field=name)
        out[name] = number
    if out["dose_min_cells_per_kg"] > out["dose_max_cells_per_kg"]:
        raise InvalidInput(gettext_noop("The minimum dose is above the maximum dose."), field="dose_min_cells_per_kg")
    tolerance = parse_decimal(values.get("dose_tolerance_percent", ""), field="Dose tolerance")
    if not Decimal(0) <= tolerance <= Decimal(100) or tolerance != tolerance.quantize(Decimal("0.01")):
        raise InvalidInput(gettext_noop("Dose tolerance: a percentage from 0 to 100, at most 2 decimals."), field="dose_tolerance_percent")
    out["dose_tolerance_percent"] = tolerance
    return out


def specification_problems(spec: Specification) -> list[Text]:
    """What keeps a draft from being approved, in words; empty when nothing does."""
    tests = list(spec.tests.all())
    problems = []
    if not tests:
        problems.append(Text(gettext_noop("The specification has no tests.")))
    groups: dict[str, list[TestDefinition]] = {}
    for test in tests:
        if test.composite_group:
            groups.setdefault(test.composite_group, []).append(test)
    for group, members in sorted(groups.items()):
        if len(members) < 2:
            problems.append(Text(gettext_noop("Composite group %(group)s has one test only: a group needs at least "
                                              "two read-outs."), {"group": group}))
        if len({m.required_for_provisional for m in members}) > 1:
            problems.append(Text(gettext_noop("Composite group %(group)s: its tests must all be, or all not be, "
                                              "required for provisional release."), {"group": group}))
    if spec.dose_min_cells_per_kg > spec.dose_max_cells_per_kg:
        problems.append(Text(gettext_noop("The minimum dose is above the maximum dose.")))
    return problems


# --- drafts -------------------------------------------------------------------------------


def _next_version(product: Product) -> int:
    return (Specification.objects.filter(product=product).aggregate(v=Max("version"))["v"] or 0) + 1


def _lock_draft(spec: Specification, expected_revision: int | None) -> Specification:
    locked = Specification.objects.select_for_update().get(pk=spec.pk)
    if expected_revision is not None and locked.revision != expected_revision:
        raise StaleRecord()
    if locked.status != SpecStatus.DRAFT:
        raise InvalidTransition(
            gettext_noop("%(spec)s is %(status)s: only a draft can be changed. Make a new version from it "
                         "instead."),
            params={"spec": str(locked), "status": Lowered(locked.get_status_display())}
        )
    return locked


def _touch(actor, spec: Specification, reason: str) -> None:
    """After any change of a draft: a new revision, and signatures already given are void."""
    spec.revision += 1
    spec.save(update_fields=["revision"])
    signatures_void_changed(actor=actor, obj=spec, reason=f"The draft changed after signing: {reason}")


def specification_create_from_data(*, actor, product: Product, data: dict = ARI_0001_LIKE,
                                   change_summary: str = "") -> Specification:
    """A new draft built from specification data (e.g. the shipped ARI-0001-like one),
    through the same checks as the editor."""
    _require_editor(actor, product.site)
    header = clean_header_fields({**{k: v for k, v in data.items() if k != "tests"}, "change_summary": change_summary})
    rows = [clean_test_fields({k: v for k, v in row.items() if k != "order"}) for row in definition_rows(data)]
    with transaction.atomic():
        Product.objects.select_for_update().get(pk=product.pk)
        spec = Specification.objects.create(site=product.site, product=product, version=_next_version(product),
                                            created_by=actor, **header)
        TestDefinition.objects.bulk_create(
            [TestDefinition(specification=spec, order=i, **row) for i, row in enumerate(rows, start=1)])
        audit_record(actor=actor, action=Action.CREATE, obj=spec, changes=spec.signable_content())
    return spec


def specification_clone(*, actor, specification: Specification, change_summary: str) -> Specification:
    """A new draft version with every test and limit of ``specification``, for the site
    to change and approve. Batches pinned to the original are not affected."""
    _require_editor(actor, specification.site)
    change_summary = clean_text(change_summary, field=gettext_noop("Change summary"), max_length=5000, required=True)
    with transaction.atomic():
        Product.objects.select_for_update().get(pk=specification.product_id)
        clone = Specification.objects.create(
            site=specification.site, product=specification.product, version=_next_version(specification.product),
            title=specification.title, dose_min_cells_per_kg=specification.dose_min_cells_per_kg,
            dose_max_cells_per_kg=specification.dose_max_cells_per_kg,
            dose_tolerance_percent=specification.dose_tolerance_percent, based_on=specification,
            change_summary=change_summary, created_by=actor,
        )
        TestDefinition.objects.bulk_create([
            TestDefinition(specification=clone, order=t.order, **{name: getattr(t, name) for name in TEST_FIELDS})
            for t in specification.tests.all()
        ])
        audit_record(actor=actor, action=Action.CREATE, obj=clone,
                     changes={"version": clone.version, "based_on": str(specification), "change_summary": change_summary})
    return clone


def specification_update(*, actor, specification: Specification, expected_revision: int, reason: str = "draft edit",
                         **values) -> Specification:
    """Title, dose range and tolerance, change summary of a draft."""
    _require_editor(actor, specification.site)
    unknown = set(values) - set(HEADER_FIELDS)
    if unknown:
        raise InvalidInput(gettext_noop("These fields cannot be edited: %(fields)s."),
                           params={"fields": ', '.join(sorted(unknown))})
    with transaction.atomic():
        locked = _lock_draft(specification, expected_revision)
        current = {name: getattr(locked, name) for name in HEADER_FIELDS}
        fields = clean_header_fields({**current, **values})
        before = locked.signable_content()
        for name, value in fields.items():
            setattr(locked, name, value)
        locked.save(update_fields=list(fields))
        changes = diff_fields(before, locked.signable_content())
        if changes:
            audit_record(actor=actor, action=Action.UPDATE, obj=locked, changes=changes, reason=reason)
            _touch(actor, locked, reason)
    return locked


def specification_test_add(*, actor, specification: Specification, expected_revision: int, **values) -> TestDefinition:
    _require_editor(actor, specification.site)
    fields = clean_test_fields(values)
    with transaction.atomic():
        locked = _lock_draft(specification, expected_revision)
        if locked.tests.count() >= MAX_TESTS:
            raise InvalidInput(gettext_noop("A specification has at most %(n)s tests."),
                               params={"n": MAX_TESTS})
        if locked.tests.filter(code=fields["code"]).exists():
            raise InvalidInput(gettext_noop("Test code %(code)s is already used in this specification."),
                               params={"code": fields["code"]}, field="code")
        order = (locked.tests.aggregate(o=Max("order"))["o"] or 0) + 1
        test = TestDefinition.objects.create(specification=locked, order=order, **fields)
        audit_record(actor=actor, action=Action.CREATE, obj=test, site=locked.site, root=locked,
                     changes=test.definition_content())
        _touch(actor, locked, f"test {test.code} added")
    return test


def specification_test_update(*, actor, test: TestDefinition, expected_revision: int, reason: str,
                              **values) -> TestDefinition:
    """Change a test of a draft (method, unit, limits, flags); audited with its reason."""
    _require_editor(actor, test.specification.site)
    merged = {name: getattr(test, name) for name in TEST_FIELDS} | values
    fields = clean_test_fields(merged)
    with transaction.atomic():
        locked = _lock_draft(test.specification, expected_revision)
        test = TestDefinition.objects.select_for_update().get(pk=test.pk)
        if fields["code"] != test.code and locked.tests.filter(code=fields["code"]).exists():
            raise InvalidInput(gettext_noop("Test code %(code)s is already used in this specification."),
                               params={"code": fields["code"]}, field="code")
        before = test.definition_content()
        for name, value in fields.items():
            setattr(test, name, value)
        test.save()
        test.refresh_from_db()
        changes = diff_fields(before, test.definition_content())
        if changes:
            audit_record(actor=actor, action=Action.UPDATE, obj=test, site=locked.site, root=locked,
                         changes=changes, reason=reason)
            _touch(actor, locked, reason)
    return test


def specification_test_remove(*, actor, test: TestDefinition, expected_revision: int, reason: str) -> None:
    _require_editor(actor, test.specification.site)
    with transaction.atomic():
        locked = _lock_draft(test.specification, expected_revision)
        audit_record(actor=actor, action=Action.DELETE, obj=test, site=locked.site, root=locked,
                     changes=test.definition_content(), reason=reason)
        test.delete()
        _touch(actor, locked, reason)


# --- approval and effectiveness ------------------------------------------------------------


def specification_signatures(spec: Specification) -> dict[str, Any]:
    """The currently valid "Reviewed" and "Approved" signatures (or None)."""
    state: dict[str, Any] = {Meaning.REVIEWED: None, Meaning.APPROVED: None}
    for view in signatures_for_record(spec):
        if view.is_valid and view.signature.meaning in state:
            state[view.signature.meaning] = view.signature
    return state


def _sign(*, actor, spec: Specification, meaning: str, password: str, expected_revision: int,
          request: HttpRequest | None, comment: str) -> Specification:
    problems = specification_problems(spec)
    if problems:
        raise NotReady(gettext_noop("The specification cannot be signed yet: %(problems)s"),
                       params={"problems": joined(problems)})
    reauth = signature_reauthenticate(actor=actor, password=password, request=request, obj=spec)
    with transaction.atomic():
        locked = _lock_draft(spec, expected_revision)
        state = specification_signatures(locked)
        other = state[Meaning.APPROVED if meaning == Meaning.REVIEWED else Meaning.REVIEWED]
        if meaning == Meaning.APPROVED and other is None:
            raise NotReady(gettext_noop("A QC analyst must review the specification before a QP approves it."))
        signature_apply(
            actor=actor, reauth=reauth, obj=locked, meaning=meaning, comment=comment,
            excluded_signers=[other.signer_id] if other is not None else [],
            excluded_reason="The QC analyst who reviews a specification and the QP who approves it must be two "
                            "different people.",
        )
        if meaning == Meaning.APPROVED:
            _transition(actor, locked, SpecStatus.APPROVED)
    return locked


def specification_review(*, actor, specification: Specification, password: str, expected_revision: int,
                         request: HttpRequest | None = None, comment: str = "") -> Specification:
    """A QC analyst signs the draft "Reviewed" (tests, methods, units and limits)."""
    require_site_perm(actor, specification.site, SitePerm.QC, action=gettext_noop("review specifications"))
    return _sign(actor=actor, spec=specification, meaning=Meaning.REVIEWED, password=password,
                 expected_revision=expected_revision, request=request, comment=comment)


def specification_approve(*, actor, specification: Specification, password: str, expected_revision: int,
                          request: HttpRequest | None = None, comment: str = "") -> Specification:
    """A QP, not the reviewer, signs the reviewed draft "Approved": it becomes approved."""
    require_site_perm(actor, specification.site, SitePerm.CERTIFY, action=gettext_noop("approve specifications"))
    return _sign(actor=actor, spec=specification, meaning=Meaning.APPROVED, password=password,
                 expected_revision=expected_revision, request=request, comment=comment)


SPEC_TRANSITIONS = {
    SpecStatus.DRAFT: frozenset({SpecStatus.APPROVED}),
    SpecStatus.APPROVED: frozenset({SpecStatus.EFFECTIVE}),
    SpecStatus.EFFECTIVE: frozenset({SpecStatus.SUPERSEDED}),
    SpecStatus.SUPERSEDED: frozenset(),
}


def _transition(actor, spec: Specification, to: str, *, reason: str = "") -> None:
    if to not in SPEC_TRANSITIONS[SpecStatus(spec.status)]:
        raise InvalidTransition(gettext_noop("%(spec)s is %(status)s; it cannot become %(to)s."),
                                params={"spec": str(spec), "status": Lowered(spec.get_status_display()), "to": Lowered(SpecStatus(to).label)})
    old = spec.status
    spec.status = to
    if to == SpecStatus.EFFECTIVE:
        spec.effective_at = timezone.now()
    spec.save(update_fields=["status", "effective_at"])
    audit_record(actor=actor, action=Action.TRANSITION, obj=spec, changes={"status": {"old": old, "new": to}},
                 reason=reason)


def specification_make_effective(*, actor, specification: Specification) -> Specification:
    """New batches of the product pin this version from now on; the version in force
    before is superseded in the same transaction. Batches already made keep theirs."""
    require_site_perm(actor, specification.site, SitePerm.CERTIFY, action=gettext_noop("put specifications into effect"))
    with transaction.atomic():
        Product.objects.select_for_update().get(pk=specification.product_id)
        locked = Specification.objects.select_for_update().get(pk=specification.pk)
        if locked.status != SpecStatus.APPROVED:
            raise InvalidTransition(gettext_noop("%(spec)s is %(status)s: only an approved specification "
                                                 "can be put into effect."),
                                    params={"spec": str(locked), "status": Lowered(locked.get_status_display())})
        state = specification_signatures(locked)
        if state[Meaning.REVIEWED] is None or state[Meaning.APPROVED] is None:
            raise NotReady(gettext_noop("%(spec)s no longer carries both valid signatures (reviewed and "
                                        "approved)."),
                           params={"spec": str(locked)})
        previous = Specification.objects.select_for_update().filter(
            product_id=locked.product_id, status=SpecStatus.EFFECTIVE).first()
        if previous is not None:
            _transition(actor, previous, SpecStatus.SUPERSEDED, reason=f"superseded by version {locked.version}")
        _transition(actor, locked, SpecStatus.EFFECTIVE)
    return locked


def effective_specification_for(product: Product) -> Specification | None:
    return Specification.objects.filter(product=product, status=SpecStatus.EFFECTIVE).first()


QUALITATIVE_CHOICES = [(v, QualitativeResult(v).label) for v in PASSING_RESULTS]
