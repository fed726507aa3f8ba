"""Exceptional provisional release: an out-of-specification fresh product released at the
treating physician's documented request with the patient's consent. A distinct, signed,
justified decision recorded under a major deviation; never a silent pass."""

from __future__ import annotations

import io

import pytest
from django.urls import reverse
from pypdf import PdfReader

from batches.exceptions import NotReady
from batches.models import BatchState, DeviationClass
from batches.services.deviations import deviation_raise_manual
from carmfg.accounts.models import Role
from carmfg.audit.models import Action, AuditEvent
from carmfg.esign.exceptions import SegregationOfDuties
from carmfg.esign.models import Meaning
from carmfg.esign.selectors import signatures_for_record
from carmfg.exceptions import InvalidInput, PermissionRefused
from qc.checklist import release_checklist
from qc.models import (
    BatchRecordDocument,
    Certification,
    CertificationDecision,
    CertificationKind,
    DocumentStatus,
    OosInvestigation,
)
from qc.services.release import (
    certification_provisional_exceptional_sign,
    certification_provisional_sign,
)
from tests.conftest import PASSWORD, assert_hidden
from tests.qc.conftest import FAILING, PROVISIONAL_CODES, enter, enter_and_review, review
from tests.qc.record_fixtures import (  # noqa: F401
    record_pki_fixture,
    record_settings_fixture,
    record_tsa_fixture,
)

JUSTIFICATION = "Viability 55 % is below 70 %; no other treatment option; the physician requested infusion."
REQUEST = {"justification": JUSTIFICATION, "physician_name": "Dr. Marta Puig",
           "consent_reference": "CONSENT-2026-0117"}


def exceptional(batch, qp, **kwargs):
    values = {**REQUEST, **kwargs}
    if "deviation" not in values:
        values["deviation"] = oos_deviation(batch)
    return certification_provisional_exceptional_sign(actor=qp, batch=batch, password=PASSWORD, **values)


def oos_deviation(batch):
    return OosInvestigation.objects.select_related("deviation").get(result__batch=batch).deviation


@pytest.fixture
def oos_batch(make_batch, qc_analyst, qc_reviewer):
    """Every provisional result in and reviewed; viability fails (a major OOS deviation opens)."""
    batch = make_batch()
    enter_and_review(batch, [c for c in PROVISIONAL_CODES if c != "viability"], qc_analyst, qc_reviewer)
    review(enter(batch, "viability", qc_analyst, outcome=FAILING), qc_reviewer)
    return batch


def unchanged(batch) -> None:
    batch.refresh_from_db()
    assert batch.state == BatchState.AWAITING_RELEASE
    assert not Certification.objects.filter(batch=batch).exists()


def test_an_out_of_specification_product_is_refused_the_ordinary_provisional_release(oos_batch, qp):
    with pytest.raises(NotReady, match="Viability"):
        certification_provisional_sign(actor=qp, batch=oos_batch, password=PASSWORD)
    unchanged(oos_batch)


def test_an_exceptional_provisional_release_is_signed_with_its_own_meaning_and_records_the_request(oos_batch, qp):
    deviation = oos_deviation(oos_batch)
    assert deviation.classification == DeviationClass.MAJOR

    cert = exceptional(oos_batch, qp)

    oos_batch.refresh_from_db()
    assert oos_batch.state == BatchState.PROVISIONALLY_RELEASED
    assert (cert.kind, cert.decision) == (CertificationKind.PROVISIONAL, CertificationDecision.RELEASED_EXCEPTIONAL)
    assert (cert.physician_name, cert.consent_reference, cert.deviation_id, cert.justification) == (
        "Dr. Marta Puig", "CONSENT-2026-0117", deviation.pk, JUSTIFICATION)
    [sig] = [v for v in signatures_for_record(cert) if v.is_valid]
    assert sig.signature.meaning == Meaning.RELEASED_EXCEPTIONAL
    event = AuditEvent.objects.get(action=Action.CREATE, object_type="qc.certification", object_id=str(cert.pk))
    assert event.changes["physician_name"] == "Dr. Marta Puig"
    assert event.changes["consent_reference"] == "CONSENT-2026-0117"
    assert event.changes["deviation_number"] == deviation.number


def test_the_request_is_part_of_what_the_qp_signs(oos_batch, qp):
    cert = exceptional(oos_batch, qp)
    Certification.objects.filter(pk=cert.pk).update(physician_name="Someone else")
    cert.refresh_from_db()

    assert not any(v.is_valid for v in signatures_for_record(cert))


@pytest.mark.parametrize(
    ("missing", "message"),
    [
        ("justification", "Justification"),
        ("physician_name", "Treating physician"),
        ("consent_reference", "Patient consent reference"),
    ],
)
def test_an_exceptional_release_needs_justification_physician_and_consent(oos_batch, qp, missing, message):
    with pytest.raises(InvalidInput, match=message):
        exceptional(oos_batch, qp, **{missing: "  "})
    unchanged(oos_batch)


def test_a_short_justification_is_refused(oos_batch, qp):
    with pytest.raises(InvalidInput, match="at least 20 characters"):
        exceptional(oos_batch, qp, justification="physician asked")
    unchanged(oos_batch)


def test_an_exceptional_release_needs_a_linked_deviation(oos_batch, qp):
    with pytest.raises(InvalidInput, match="major deviation"):
        exceptional(oos_batch, qp, deviation=None)
    unchanged(oos_batch)


def test_an_exceptional_release_is_recorded_under_a_major_deviation_not_a_minor_one(oos_batch, qp, technician):
    minor = deviation_raise_manual(actor=technician, site=oos_batch.site, classification=DeviationClass.MINOR,
                                   title="Physician request", description="Request to infuse", batch=oos_batch)

    with pytest.raises(NotReady, match="recorded under a major deviation"):
        exceptional(oos_batch, qp, deviation=minor)
    unchanged(oos_batch)


def test_the_linked_deviation_must_be_one_of_this_batch(oos_batch, make_batch, qp, technician):
    other = make_batch()
    theirs = deviation_raise_manual(actor=technician, site=other.site, classification=DeviationClass.MAJOR,
                                    title="Elsewhere", description="Another batch", batch=other)

    with pytest.raises(NotReady, match="not a deviation of batch"):
        exceptional(oos_batch, qp, deviation=theirs)
    unchanged(oos_batch)


def test_a_product_within_specification_is_not_released_exceptionally(make_batch, qc_passed, qp, technician):
    batch = make_batch()
    qc_passed(batch)
    deviation = deviation_raise_manual(actor=technician, site=batch.site, classification=DeviationClass.MAJOR,
                                       title="Request", description="Physician request", batch=batch)

    with pytest.raises(NotReady, match="meets its specification"):
        exceptional(batch, qp, deviation=deviation)
    unchanged(batch)


def test_an_exceptional_release_is_refused_while_a_provisional_result_is_missing(make_batch, qc_analyst, qc_reviewer, qp):
    batch = make_batch()
    enter_and_review(batch, [c for c in PROVISIONAL_CODES if c not in ("viability", "cd3")], qc_analyst, qc_reviewer)
    review(enter(batch, "viability", qc_analyst, outcome=FAILING), qc_reviewer)

    with pytest.raises(NotReady, match="CD3\\+ T cells: no result yet"):
        exceptional(batch, qp)
    unchanged(batch)


def test_an_exceptional_release_is_refused_while_an_unrelated_major_deviation_is_open(oos_batch, qp, technician):
    deviation_raise_manual(actor=technician, site=oos_batch.site, classification=DeviationClass.MAJOR,
                           title="Incubator alarm", description="CO2 out of range for 3 h", batch=oos_batch)

    with pytest.raises(NotReady, match="Incubator alarm.*is not about this out-of-specification result"):
        exceptional(oos_batch, qp)
    unchanged(oos_batch)


def test_an_exceptional_release_is_refused_while_a_critical_deviation_is_open(oos_batch, qp, technician):
    deviation_raise_manual(actor=technician, site=oos_batch.site, classification=DeviationClass.CRITICAL,
                           title="Open bag", description="Closed system breached", batch=oos_batch)

    with pytest.raises(NotReady, match="critical and open"):
        exceptional(oos_batch, qp)
    unchanged(oos_batch)


def test_a_qp_who_reviewed_a_result_of_the_batch_cannot_release_it_exceptionally(make_batch, make_user, site,
                                                                                   qc_analyst, qp):
    qp_and_qc = make_user("qpqc", roles=[Role.QUALIFIED_PERSON, Role.QC_ANALYST], site=site)
    batch = make_batch()
    enter_and_review(batch, [c for c in PROVISIONAL_CODES if c != "viability"], qc_analyst, qp_and_qc)
    review(enter(batch, "viability", qc_analyst, outcome=FAILING), qp_and_qc)

    with pytest.raises(SegregationOfDuties, match="cannot certify it"):
        exceptional(batch, qp_and_qc)
    unchanged(batch)


def test_a_qp_of_another_site_cannot_release_exceptionally(oos_batch, other_site_user):
    with pytest.raises(PermissionRefused):
        exceptional(oos_batch, other_site_user)
    unchanged(oos_batch)


def test_the_final_checklist_records_the_exceptional_provisional_release(oos_batch, qp):
    exceptional(oos_batch, qp)

    item = release_checklist(oos_batch, kind=CertificationKind.FINAL).item("provisional")
    assert item.ok
    assert "Released exceptionally, out of specification" in item.message
    assert "Dr. Marta Puig" in item.message
    assert "CONSENT-2026-0117" in item.message
    assert item.details == (f"Justification: {JUSTIFICATION}",)


# --- the release page -------------------------------------------------------------------------


def _post(batch, linked, **extra):
    return {"kind": "provisional", "decision": "released_exceptional", "version": batch.version,
            "physician_name": "Dr. Marta Puig", "consent_reference": "CONSENT-2026-0117",
            "deviation": linked.pk, "justification": JUSTIFICATION,
            "password": PASSWORD, **extra}


def test_a_qp_releases_exceptionally_from_the_release_page(oos_batch, client_for, qp):
    url = reverse("qc:certify", args=[oos_batch.pk])

    response = client_for(qp).post(url, _post(oos_batch, oos_deviation(oos_batch)))

    assert response.status_code == 302
    oos_batch.refresh_from_db()
    assert oos_batch.state == BatchState.PROVISIONALLY_RELEASED
    assert Certification.objects.get(batch=oos_batch).decision == CertificationDecision.RELEASED_EXCEPTIONAL


@pytest.mark.parametrize(("extra", "message"), [
    ({"consent_reference": ""}, "Patient consent reference"),
    ({"physician_name": "x" * 300}, "Treating physician"),
    ({"deviation": "abc"}, "choose one of this batch"),
    ({"deviation": "999999"}, "choose one of this batch"),
    ({"deviation": ""}, "major deviation"),
])
def test_bad_exceptional_release_input_is_a_message_and_changes_nothing(oos_batch, client_for, qp, extra, message):
    response = client_for(qp).post(reverse("qc:certify", args=[oos_batch.pk]),
                                   _post(oos_batch, oos_deviation(oos_batch), **extra))

    assert response.status_code == 400
    assert message in response.content.decode()
    unchanged(oos_batch)


def test_another_sites_deviation_cannot_be_linked_from_the_page(oos_batch, make_batch, client_for, qp, technician):
    other = make_batch()
    theirs = deviation_raise_manual(actor=technician, site=other.site, classification=DeviationClass.MAJOR,
                                    title="Elsewhere", description="Another batch", batch=other)

    response = client_for(qp).post(reverse("qc:certify", args=[oos_batch.pk]), _post(oos_batch, theirs))

    assert response.status_code == 400
    unchanged(oos_batch)


def test_the_exceptional_release_is_hidden_from_another_site(oos_batch, client_for, other_site_user):
    client = client_for(other_site_user)
    assert_hidden(client, reverse("qc:batch_release", args=[oos_batch.pk]), methods=("get",))
    response = client.post(reverse("qc:certify", args=[oos_batch.pk]), _post(oos_batch, oos_deviation(oos_batch)))
    assert response.status_code == 404
    unchanged(oos_batch)


def test_the_release_page_offers_the_exceptional_release_for_an_out_of_specification_product(oos_batch, client_for,
                                                                                              qp):
    page = client_for(qp).get(reverse("qc:batch_release", args=[oos_batch.pk])).content.decode()

    assert 'name="decision" value="released_exceptional"' in page
    assert 'name="consent_reference"' in page
    assert f'<option value="{oos_deviation(oos_batch).pk}" selected>' in page


def test_the_release_page_says_what_an_exceptional_release_still_needs(oos_batch, client_for, qp, technician):
    deviation_raise_manual(actor=technician, site=oos_batch.site, classification=DeviationClass.CRITICAL,
                           title="Open bag", description="Closed system breached", batch=oos_batch)

    page = client_for(qp).get(reverse("qc:batch_release", args=[oos_batch.pk])).content.decode()

    assert 'value="released_exceptional"' not in page
    assert "is critical and open" in page


def test_the_release_page_shows_an_exceptional_release_prominently(oos_batch, client_for, qp, auditor):
    exceptional(oos_batch, qp)

    page = client_for(auditor).get(reverse("qc:batch_release", args=[oos_batch.pk])).content.decode()

    banner = page[page.index('id="exceptional-release"'):]
    banner = banner[:banner.index("</div>")]
    assert "Dr. Marta Puig" in banner
    assert "CONSENT-2026-0117" in banner
    assert oos_deviation(oos_batch).number in banner
    assert "Released exceptionally (out of specification)" in page  # the signature's meaning


def test_a_failure_known_at_the_exceptional_release_is_not_shown_as_a_late_one(oos_batch, client_for, qp):
    exceptional(oos_batch, qp)

    page = client_for(qp).get(reverse("qc:batch_release", args=[oos_batch.pk])).content.decode()

    assert "A late result fails its specification" not in page
    assert 'id="exceptional-release"' in page


def test_the_signed_batch_record_states_the_exceptional_release(record_settings, oos_batch, qp,
                                                                django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        cert = exceptional(oos_batch, qp)

    document = BatchRecordDocument.objects.get(certification=cert)
    assert document.status == DocumentStatus.DONE, document.failure_reason
    with document.file.open("rb") as fh:
        text = " ".join((page.extract_text() or "") for page in PdfReader(io.BytesIO(fh.read())).pages)
    text = " ".join(text.split())
    assert "Dr. Marta Puig" in text
    assert "CONSENT-2026-0117" in text
    assert oos_deviation(oos_batch).number in text
