"""What the signed batch record says (qc.documents, qc.documents_sections): every part
the issue lists is in the PDF's text, the embedded JSON is the data the record was made
from, and the record still verifies."""

from __future__ import annotations

import io
import json

import pytest
from pypdf import PdfReader

from batches.isbt128 import parse_din
from batches.models import CustodyStep
from batches.scans import label_scan_data
from batches.services.custody import custody_scan
from batches.services.execution import batch_complete, step_correct, step_verify
from carmfg.canonical import canonical_json
from carmfg.exceptions import GMPError
from qc import documents
from qc.models import BatchRecordDocument, DocumentPurpose, DocumentStatus
from qc.services.release import certification_provisional_sign
from qc.verification import verify_record
from tests.qc.conftest import PASSWORD
from tests.qc.record_fixtures import (  # noqa: F401
    record_pki_fixture,
    record_settings_fixture,
    record_tsa_fixture,
)

pytestmark = pytest.mark.django_db


def _pdf(document: BatchRecordDocument) -> bytes:
    document.refresh_from_db()
    assert document.status == DocumentStatus.DONE, document.failure_reason
    with document.file.open("rb") as fh:
        return fh.read()


def _text(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


def _attachment(pdf: bytes) -> tuple[str, bytes]:
    attachments = PdfReader(io.BytesIO(pdf)).attachments
    assert len(attachments) == 1
    ((name, contents),) = attachments.items()
    return name, contents[0]


@pytest.fixture
def certified_record(record_settings, make_batch, qc_passed, qp, technician, verifier,
                     django_capture_on_commit_callbacks):
    """A finished batch with one corrected step and one refused custody scan, QC results
    reviewed, certified provisionally: its record is made by the task after commit."""
    batch = make_batch(verify=False)
    record = batch.step_records.get(definition__code="line_clearance")
    record = step_correct(actor=technician, record=record, password=PASSWORD, reason="Room number left out",
                          expected_version=record.version, comment="Cleared, room GMP-2")
    step_verify(actor=verifier, record=record, password=PASSWORD, expected_version=record.version)
    batch.refresh_from_db()
    batch = batch_complete(actor=technician, batch=batch, expected_version=batch.version)
    with pytest.raises(GMPError):
        custody_scan(actor=technician, donation=batch.donation, step=CustodyStep.RECEIPT, scanned_code="=W999926000001",
                     location="GMP goods-in", temperature_c="4.0")
    custody_scan(actor=technician, donation=batch.donation, step=CustodyStep.RECEIPT,
                 scanned_code=label_scan_data(parse_din(batch.donation.din), "AB-1"), location="GMP goods-in", temperature_c="4.0")
    qc_passed(batch)
    with django_capture_on_commit_callbacks(execute=True):
        certification = certification_provisional_sign(actor=qp, batch=batch, password=PASSWORD)
    return BatchRecordDocument.objects.get(certification=certification)


def test_certification_record_prints_every_part_of_the_dossier(certified_record, technician, verifier, qp):
    text = _text(_pdf(certified_record))
    batch = certified_record.batch

    # cover
    for expected in (batch.number, batch.donation.din, batch.donation.check_character, batch.order.patient.pseudonym,
                     "Specification", "Master batch record", "Provisional (conditional)", qp.get_full_name()):
        assert expected in text, expected
    # summary, chain of identity (the refused scan included), steps, QC, deviations, checklist, audit, manifest
    for heading in ("Summary", "Vein to vein", "Dose per kg", "Chain of identity and custody", "BLOCKED",
                    "Stages and steps", "QC results against the specification", "Deviations and OOS investigations",
                    "Release checklist as evaluated at certification", "Audit trail of this batch",
                    "Manifest and electronic seal"):
        assert heading in text, heading
    # a step with its value, limits, both signature manifestations (name, UTC, local, meaning) and the correction
    assert "Line clearance" in text
    assert f"Performed: {technician.get_full_name()}" in text
    assert f"Verified: {verifier.get_full_name()}" in text
    assert " UTC" in text
    assert "local " in text
    assert "Correction by" in text
    assert "Room number left out" in text
    assert "Cleared, room GMP-2" in text
    # inputs of the dose calculation with where each comes from
    assert "Inputs:" in text
    assert "weighed" in text
    # page x of y on every page
    pages = PdfReader(io.BytesIO(_pdf(certified_record))).pages
    assert f"Page 1 of {len(pages)}" in pages[0].extract_text()
    assert f"Page {len(pages)} of {len(pages)}" in pages[-1].extract_text()
    # a certification record is the record itself: no draft / copy watermark, and every
    # page's footer says so
    assert "DRAFT" not in text
    assert "CONTROLLED COPY" not in text
    assert all("Signed record" in page.extract_text() for page in pages)
    assert "Controlled copy" not in text


def test_embedded_json_is_the_data_the_record_states_and_the_record_verifies(certified_record):
    pdf = _pdf(certified_record)
    name, raw = _attachment(pdf)
    data = json.loads(raw)

    assert name == documents.data_attachment_name(certified_record)
    assert canonical_json(data) == raw
    assert documents.hashlib.sha256(raw).hexdigest() == certified_record.data_sha256
    assert certified_record.data_sha256 in _text(pdf)  # printed in the manifest
    sections = data["sections"]
    assert set(sections) == {"batch", "summary", "chain_of_identity", "steps", "qc", "deviations",
                             "release_checklist", "audit_trail"}
    assert sections["batch"]["certification"]["kind"] == "provisional"
    assert sections["chain_of_identity"]["blocked"] == 1
    steps = [step for stage in sections["steps"]["stages"] for step in stage["steps"]]
    clearance = next(step for step in steps if step["code"] == "line_clearance")
    (clearance_record,) = clearance["records"]
    assert clearance_record["corrections"][0]["reason"] == "Room number left out"
    assert "comment: — → Cleared, room GMP-2" in clearance_record["corrections"][0]["changes"]  # original and new
    assert [s["meaning"] for s in clearance_record["signatures"] if s["status"] == "valid"] == ["Performed", "Verified"]
    assert "voided" in {s["status"] for s in clearance_record["signatures"]}  # the signature of the old content
    checklist = sections["release_checklist"]["certifications"][0]
    assert checklist["items"]
    assert all(item["status"] != "failed" for item in checklist["items"])
    assert sections["qc"]["pending_at_certification"]  # late tests named at provisional release
    assert data["audit_chain"]["head_seq"] == certified_record.audit_chain_seq

    verdict = verify_record(pdf)
    assert verdict.ok, verdict.problems


def test_export_of_an_uncertified_batch_is_marked_draft(record_settings, make_batch, auditor,
                                                       django_capture_on_commit_callbacks):
    batch = make_batch()
    with django_capture_on_commit_callbacks(execute=True):
        document = documents.batch_record_request(actor=auditor, batch=batch, purpose=DocumentPurpose.EXPORT)

    text = _text(_pdf(document))

    assert "DRAFT · NOT CERTIFIED" in text
    assert "The batch has not been certified" in text
    # the footer of every page repeats it, never "controlled copy"
    pages = PdfReader(io.BytesIO(_pdf(document))).pages
    assert all("Draft · not certified" in page.extract_text() for page in pages)
    assert "Controlled copy" not in text
