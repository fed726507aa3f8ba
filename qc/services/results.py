"""QC results: entered by an analyst with their signature ("Performed"), reviewed by a
different QC person ("Reviewed"), judged by the server against the specification the
batch is pinned to, never against the one in force today.

* A value is compared with a limit only in the test's own unit and basis: a value in
  another unit is refused, not converted.
* A failing result opens an OOS investigation and a deviation at once (see
  ``qc.services.oos``); a composite criterion fails only when all its read-outs fail.
* A failing result on a batch already released provisionally (the fresh product may
  be in the patient) is a late result: see :func:`late_failure_notify`.
* Invalidation needs a reason and the signature of a QC person other than the analyst;
  the original stays visible, and the retest points to it.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext_noop

from batches.models import Batch, BatchState
from carmfg.accounts.models import Role
from carmfg.accounts.permissions import SitePerm, require_site_perm
from carmfg.audit.models import Action
from carmfg.audit.services import audit_record
from carmfg.esign.models import Meaning
from carmfg.esign.services import signature_apply, signature_reauthenticate, signatures_void_changed
from carmfg.exceptions import StaleRecord
from carmfg.textinput import REASON_MAX_LENGTH, clean_text
from carmfg.texts import Lowered, Text
from qc.evaluation import QUALITATIVE_PAIRS, evaluate, parse_number
from qc.exceptions import InvalidInput, NotReady, SegregationOfDuties
from qc.models import (
    LimitType,
    OosStatus,
    ResultEvaluation,
    ResultStatus,
    Sample,
    TestDefinition,
    TestResult,
)
from qc.selectors import QC_ACTIVE_STATES, batch_test_status, pinned_specification

COMMENT_MAX = 2000
RAW_VALUE_MAX = 40
# "1,200" is 1.2 in Moscow and 1200 in a US SOP: a comma before exactly three digits is
# refused rather than guessed ("0,5" is unambiguous and accepted).
_THOUSANDS = re.compile(r"\d,\d{3}(?!\d)")


def _normalise_unit(unit: str) -> str:
    return " ".join(unit.split()).casefold()


def _clean_measurement(test: TestDefinition, *, raw_value, qualitative, unit) -> tuple[str, Decimal | None, str]:
    """(qualifier, value, qualitative) as entered, checked against the test's kind and unit."""
    if test.limit_type == LimitType.QUALITATIVE:
        if raw_value not in (None, ""):
            raise InvalidInput(gettext_noop("%(test)s is qualitative: choose a result, do not type a number."),
                               params={"test": test.name}, field="value")
        allowed = QUALITATIVE_PAIRS.get(test.passing_result, (test.passing_result,))
        if not isinstance(qualitative, str) or qualitative not in allowed:
            raise InvalidInput(gettext_noop("%(test)s: choose one of %(items)s."),
                               params={"test": test.name, "items": ', '.join(a.replace('_', ' ') for a in allowed)},
                               field="qualitative")
        return "", None, qualitative
    if qualitative not in (None, ""):
        raise InvalidInput(gettext_noop("%(test)s is numeric: type the value, not a qualitative result."),
                           params={"test": test.name}, field="qualitative")
    if not isinstance(raw_value, str):
        raise InvalidInput(gettext_noop("%(test)s: expected a number."),
                           params={"test": test.name}, field="value")
    raw = clean_text(raw_value, field=gettext_noop("Value"), max_length=RAW_VALUE_MAX, required=True)
    if _THOUSANDS.search(raw):
        raise InvalidInput(gettext_noop("Value: “%(raw)s” — is the comma a decimal point or a thousands "
                                        "separator? Write it without thousands separators (1200) or with a "
                                        "decimal point (1.2)."),
                           params={"raw": raw}, field="value")
    qualifier, value = parse_number(raw)
    if abs(value) >= Decimal("1e17") or value != value.quantize(Decimal("0.000001")):
        raise InvalidInput(gettext_noop("Value: %(raw)s has more than 6 decimals or is out of range."),
                           params={"raw": raw}, field="value")
    if not isinstance(unit, str) or _normalise_unit(unit) != _normalise_unit(test.unit):
        shown = unit if isinstance(unit, str) and unit.strip() else Text(gettext_noop("no unit"))
        raise InvalidInput(
            gettext_noop("%(test)s is specified in “%(unit)s”; the value was given in “%(shown)s”. A value "
                         "is only compared with a limit in the same unit and basis: convert it in the "
                         "laboratory record, or report it in the specified unit."),
            params={"test": test.name, "unit": test.unit, "shown": shown}, field="unit")
    return qualifier, value, ""


def _check_test_of_batch(batch: Batch, test: TestDefinition) -> None:
    spec = pinned_specification(batch)
    if test.specification_id != spec.pk:
        raise InvalidInput(gettext_noop("%(test)s is not a test of %(spec)s, the specification batch "
                                        "%(batch)s is pinned to."),
                           params={"test": test.name, "spec": str(spec), "batch": batch.number},
                           field="test")


def result_enter(*, actor, batch: Batch, test: TestDefinition, password: str, raw_value: str = "",
                 qualitative: str = "", unit: str = "", sample: Sample | None = None, comment: str = "",
                 request: HttpRequest | None = None) -> TestResult:
    """A QC analyst records one result, signed "Performed". The server judges it against
    the pinned specification; a failing one opens an OOS investigation and a deviation."""
    require_site_perm(actor, batch.site, SitePerm.QC, action=gettext_noop("enter QC results"))
    _check_test_of_batch(batch, test)
    qualifier, value, qualitative = _clean_measurement(test, raw_value=raw_value, qualitative=qualitative, unit=unit)
    verdict = evaluate(test, qualifier=qualifier, value=value, qualitative=qualitative)
    comment = clean_text(comment, field=gettext_noop("Comment"), max_length=COMMENT_MAX)
    if sample is not None:
        if sample.batch_id != batch.pk:
            raise InvalidInput(gettext_noop("The sample belongs to another batch."), field="sample")
        if test.code not in (sample.test_codes or []):
            raise InvalidInput(gettext_noop("Sample %(sample)s was not taken for %(test)s."),
                               params={"sample": sample.code, "test": test.name}, field="sample")
    reauth = signature_reauthenticate(actor=actor, password=password, request=request, obj=batch)
    with transaction.atomic():
        locked = Batch.objects.select_for_update().select_related("site", "order", "product").get(pk=batch.pk)
        if locked.state not in QC_ACTIVE_STATES:
            raise NotReady(gettext_noop("Batch %(batch)s is %(state)s: no QC result can be recorded for it."),
                           params={"batch": locked.number, "state": Lowered(locked.get_state_display())})
        history = list(TestResult.objects.filter(batch=locked, test=test).order_by("entered_at", "pk"))
        if any(r.status != ResultStatus.INVALIDATED for r in history):
            raise NotReady(gettext_noop("%(test)s already has a valid result for batch %(batch)s. A retest "
                                        "is only recorded after the result is invalidated (with a reason and "
                                        "a reviewer's signature)."),
                           params={"test": test.name, "batch": locked.number})
        retest_of = history[-1] if history else None
        detail = verdict.detail
        if test.composite_group:
            detail += " " + gettext_noop("Part of composite criterion “%(group)s”: it passes when any read-out "
                                         "passes.") % {"group": test.composite_group}
        result = TestResult.objects.create(
            site=locked.site, batch=locked, test=test, sample=sample, qualifier=qualifier, value=value,
            qualitative=qualitative, unit=test.unit if value is not None else "", evaluation=verdict.outcome,
            evaluation_detail=detail[:300], retest_of=retest_of, entered_by=actor, entered_at=timezone.now(),
            comment=comment,
        )
        result.refresh_from_db()
        audit_record(actor=actor, action=Action.CREATE, obj=result,
                     changes={**result.signable_content(), "test_code": test.code, "spec": test.specification_id,
                              "display": result.display_value})
        signature_apply(actor=actor, reauth=reauth, obj=result, meaning=Meaning.PERFORMED, comment=comment)
        if result.evaluation == ResultEvaluation.FAIL:
            _on_failure(actor, locked, result)
    return result


def _on_failure(actor, batch: Batch, result: TestResult) -> None:
    """A failing result: an OOS investigation when its criterion fails (a read-out of a
    composite criterion alone does not fail it), and the late-result notifications."""
    from qc.services.oos import oos_open

    test = result.test
    members = [test]
    if test.composite_group:
        qc = batch_test_status(batch)
        group = [s for s in qc.tests if s.test.composite_group == test.composite_group]
        if any(s.state != "failing" for s in group):
            return  # another read-out may still meet its limit
        members = [s.test for s in group]
    critical = any(m.oos_deviation_class == "critical" for m in members)
    oos_open(actor=actor, result=result, critical=critical)


def result_review(*, actor, result: TestResult, password: str, expected_version: int,
                  request: HttpRequest | None = None, comment: str = "") -> TestResult:
    """A second QC person, not the analyst who entered it, signs the result "Reviewed"."""
    require_site_perm(actor, result.site, SitePerm.QC, action=gettext_noop("review QC results"))
    if result.entered_by_id == actor.pk:
        raise SegregationOfDuties(gettext_noop("You entered this result: a different QC person must review "
                                               "it."))
    reauth = signature_reauthenticate(actor=actor, password=password, request=request, obj=result)
    with transaction.atomic():
        locked = TestResult.objects.select_for_update().select_related("test", "batch").get(pk=result.pk)
        if locked.version != expected_version:
            raise StaleRecord()
        if locked.status != ResultStatus.ENTERED:
            raise NotReady(gettext_noop("This result is %(status)s: only an entered result is reviewed."),
                           params={"status": Lowered(locked.get_status_display())})
        signature_apply(actor=actor, reauth=reauth, obj=locked, meaning=Meaning.REVIEWED, comment=comment,
                        excluded_signers=[locked.entered_by_id],
                        excluded_reason=gettext_noop("You entered this result: a different QC person must review it."))
        locked.status = ResultStatus.REVIEWED
        locked.reviewed_by = actor
        locked.reviewed_at = timezone.now()
        locked.version += 1
        locked.save(update_fields=["status", "reviewed_by", "reviewed_at", "version"])
        audit_record(actor=actor, action=Action.TRANSITION, obj=locked,
                     changes={"status": {"old": ResultStatus.ENTERED, "new": ResultStatus.REVIEWED}})
    return locked


def invalidate_locked(*, actor, reauth, result: TestResult, reason: str) -> TestResult:
    """Invalidate a locked result in the caller's transaction: the reason is recorded,
    the entry signatures are voided (the content changed), and the invalidating QC
    person signs "Reviewed" over the invalidated record. The original stays visible."""
    if result.status == ResultStatus.INVALIDATED:
        raise NotReady(gettext_noop("This result is already invalidated."))
    if result.entered_by_id == actor.pk:
        raise SegregationOfDuties(gettext_noop("You entered this result: a different QC person must "
                                               "invalidate it."))
    old = result.status
    result.status = ResultStatus.INVALIDATED
    result.invalidation_reason = reason
    result.version += 1
    result.save(update_fields=["status", "invalidation_reason", "version"])
    audit_record(actor=actor, action=Action.UPDATE, obj=result,
                 changes={"status": {"old": old, "new": ResultStatus.INVALIDATED}}, reason=reason)
    signatures_void_changed(actor=actor, obj=result, reason=f"Result invalidated: {reason}")
    signature_apply(actor=actor, reauth=reauth, obj=result, meaning=Meaning.REVIEWED, comment=reason,
                    excluded_signers=[result.entered_by_id],
                    excluded_reason=gettext_noop("You entered this result: a different QC person must invalidate it."))
    return result


def result_invalidate(*, actor, result: TestResult, reason: str, password: str, expected_version: int,
                      request: HttpRequest | None = None) -> TestResult:
    """Invalidate a result (e.g. sample mix-up), with a reason and the reviewer's
    signature. A result under OOS investigation is invalidated only by its phase I
    conclusion of a laboratory error: no testing into compliance."""
    require_site_perm(actor, result.site, SitePerm.QC, action=gettext_noop("invalidate QC results"))
    reason = clean_text(reason, field=gettext_noop("Reason"), max_length=REASON_MAX_LENGTH, required=True)
    if result.entered_by_id == actor.pk:
        raise SegregationOfDuties(gettext_noop("You entered this result: a different QC person must "
                                               "invalidate it."))
    reauth = signature_reauthenticate(actor=actor, password=password, request=request, obj=result)
    with transaction.atomic():
        locked = TestResult.objects.select_for_update().select_related("test", "batch").get(pk=result.pk)
        if locked.version != expected_version:
            raise StaleRecord()
        oos = getattr(locked, "oos", None)
        if oos is not None:
            raise NotReady(gettext_noop("This result is under an OOS investigation: it is invalidated only "
                                        "when phase I finds an assignable laboratory error. Conclude phase I "
                                        "on the investigation page."))
        if locked.evaluation == ResultEvaluation.FAIL and not locked.test.composite_group:
            raise NotReady(gettext_noop("A failing result is invalidated only through its OOS investigation."))
        invalidate_locked(actor=actor, reauth=reauth, result=locked, reason=reason)
    return locked


# --- overdue results ------------------------------------------------------------------------


def results_overdue_flag(*, now: dt.datetime | None = None) -> dict:
    """Daily: alert the site's QC analysts and QPs of every test still without a result
    past its expected date (sample date + turnaround). Once per test and person: a
    second run the same day, or the next, creates nothing new."""
    from qc.services.alerts import alert_create, site_users_with_role

    now = now or timezone.now()
    created = checked = 0
    batches = Batch.objects.filter(state__in=QC_ACTIVE_STATES).select_related("site", "order__patient")
    recipients_by_site: dict[int, list] = {}
    for batch in batches.iterator(chunk_size=200):
        if batch.state == BatchState.IN_PROCESS:
            continue  # not complete: its samples may not be taken yet
        qc = batch_test_status(batch)
        today = now.astimezone(batch.site.zone).date()
        overdue = [s for s in qc.tests if s.state == "missing" and s.expected_on is not None and s.expected_on < today]
        checked += 1
        if not overdue:
            continue
        if batch.site_id not in recipients_by_site:
            people = list(site_users_with_role(batch.site, Role.QC_ANALYST)) + list(
                site_users_with_role(batch.site, Role.QUALIFIED_PERSON))
            recipients_by_site[batch.site_id] = list({u.pk: u for u in people}.values())
        with transaction.atomic():
            for status in overdue:
                for person in recipients_by_site[batch.site_id]:
                    alert = alert_create(
                        actor=None, site=batch.site, batch=batch, recipient=person,
                        key=f"overdue:{batch.pk}:{status.test.pk}",
                        title=Text(gettext_noop("Overdue: %(test)s of batch %(batch)s"),
                                   {"test": status.test.name, "batch": batch.number}),
                        message=Text(gettext_noop("The %(test)s result of batch %(batch)s was expected on %(date)s "
                                                  "(turnaround %(days)s days) and is not recorded yet."),
                                     {"test": status.test.name, "batch": batch.number,
                                      "date": f"{status.expected_on:%Y-%m-%d}", "days": status.test.turnaround_days}),
                    )
                    created += alert is not None
    return {"batches_checked": checked, "alerts_created": created}


def open_oos_for(result: TestResult):
    oos = getattr(result, "oos", None)
    return oos if oos is not None and oos.status != OosStatus.CLOSED else None
