"""The signed batch record speaks the language of the person who asked for it (issue #11):
the language is fixed on the document row when it is requested (the worker has no
request to read it from), stated in its audit event and in the embedded data, and the
whole PDF is printed in it. What the record embeds as data stays as stored (English)."""

from __future__ import annotations

import hashlib
import io
import json

import pytest
from django.utils import timezone, translation
from pypdf import PdfReader

from carmfg.accounts.services import profile_language_set
from carmfg.audit.models import Action, AuditEvent
from carmfg.canonical import canonical_json
from carmfg.esign.models import Meaning
from qc import documents
from qc.models import (
    BatchRecordDocument,
    CertificationDecision,
    CertificationKind,
    DocumentPurpose,
    DocumentStatus,
)
from qc.services.release import certification_provisional_sign
from qc.verification import verify_record
from tests.qc.conftest import PASSWORD
from tests.qc.record_fixtures import (  # noqa: F401
    record_pki_fixture,
    record_settings_fixture,
    record_tsa_fixture,
)

pytestmark = pytest.mark.django_db

ENGLISH_SECTION_TITLES = (
    "Summary", "Chain of identity and custody", "Stages and steps", "QC results against the specification",
    "Deviations and OOS investigations", "Release checklist as evaluated at certification", "Audit trail of this batch",
    "Manifest and electronic seal",
)
RUSSIAN_SECTION_TITLES = (
    "Сводка", "Цепочка идентичности и передачи материала", "Этапы и шаги",
    "Результаты ОКК в сравнении со спецификацией", "Отклонения и расследования OOS",
    "Контрольный перечень выпуска на момент сертификации", "Журнал аудита серии", "Манифест и электронная печать",
)


def _pdf(document: BatchRecordDocument) -> bytes:
    document.refresh_from_db()
    assert document.status == DocumentStatus.DONE, document.failure_reason
    with document.file.open("rb") as fh:
        return fh.read()


def _pages(pdf: bytes) -> list[str]:
    return [page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages]


def _data(pdf: bytes) -> dict:
    ((_name, contents),) = PdfReader(io.BytesIO(pdf)).attachments.items()
    return json.loads(contents[0])


def _certified(make_batch, qc_passed, qp, capture) -> BatchRecordDocument:
    batch = make_batch()
    qc_passed(batch)
    with capture(execute=True):
        certification = certification_provisional_sign(actor=qp, batch=batch, password=PASSWORD)
    return BatchRecordDocument.objects.get(certification=certification)


def test_record_requested_by_a_russian_speaking_qp_is_printed_in_russian(
    record_settings, make_batch, qc_passed, qp, technician, django_capture_on_commit_callbacks
):
    profile_language_set(actor=qp, language="ru")

    document = _certified(make_batch, qc_passed, qp, django_capture_on_commit_callbacks)
    pdf = _pdf(document)
    pages = _pages(pdf)
    text = "\n".join(pages)

    assert document.language == "ru"
    for title in RUSSIAN_SECTION_TITLES:
        assert title in text, title
    for title in ENGLISH_SECTION_TITLES:
        assert title not in text, title
    # state, certification and signature meanings in Russian; not in English
    assert "Выпущена условно" in text  # the batch's state: provisionally released
    assert "Условная (предварительная)" in text  # CertificationKind.PROVISIONAL
    assert f"Выполнено: {technician.get_full_name()}" in text  # Meaning.PERFORMED on a step
    assert "Верифицировано:" in text  # Meaning.VERIFIED
    assert "Provisionally released" not in text
    assert "Performed:" not in text
    assert f"Стр. 1 из {len(pages)}" in pages[0]
    # the signature manifestations still state UTC and the local time
    assert " UTC" in text
    assert "местное " in text
    # the embedded data is the record as stored: English labels, codes, and the language it was printed in
    data = _data(pdf)
    assert data["document"]["language"] == "ru"
    assert data["sections"]["batch"]["state_label"] == "Provisionally released"
    steps = [step for stage in data["sections"]["steps"]["stages"] for step in stage["steps"]]
    assert {sig["meaning"] for step in steps for r in step["records"] for sig in r["signatures"]} >= {"Performed"}
    # the language is in the record's audit event; the record verifies as any other
    event = AuditEvent.objects.get(object_type="qc.batchrecorddocument", object_id=str(document.pk),
                                   action=Action.CREATE)
    assert event.changes["language"] == "ru"
    verdict = verify_record(pdf)
    assert verdict.ok, verdict.problems


def test_record_requested_in_english_stays_english(record_settings, make_batch, auditor,
                                                  django_capture_on_commit_callbacks):
    batch = make_batch()
    with translation.override("en"), django_capture_on_commit_callbacks(execute=True):
        document = documents.batch_record_request(actor=auditor, batch=batch, purpose=DocumentPurpose.EXPORT)
    pdf = _pdf(document)
    text = "\n".join(_pages(pdf))

    assert document.language == "en"
    assert "DRAFT · NOT CERTIFIED" in text
    for title in ("Summary", "Stages and steps", "Audit trail of this batch", "Manifest and electronic seal"):
        assert title in text, title
    assert "Сводка" not in text
    assert "Performed:" in text
    event = AuditEvent.objects.get(object_type="qc.batchrecorddocument", object_id=str(document.pk),
                                   action=Action.CREATE)
    assert event.changes["language"] == "en"
    assert verify_record(pdf).ok


def test_draft_export_watermark_in_russian(record_settings, make_batch, auditor, django_capture_on_commit_callbacks):
    profile_language_set(actor=auditor, language="ru")
    batch = make_batch()
    with django_capture_on_commit_callbacks(execute=True):
        document = documents.batch_record_request(actor=auditor, batch=batch, purpose=DocumentPurpose.EXPORT)
    text = "\n".join(_pages(_pdf(document)))

    assert "ЧЕРНОВИК · НЕ СЕРТИФИЦИРОВАНО" in text
    assert "DRAFT" not in text
    assert "Серия не сертифицирована" in text


def test_english_and_russian_records_of_one_snapshot_embed_the_same_data_and_hash(
    record_settings, make_batch, qc_passed, qp
):
    """The embedded data is built in English whoever reads the record: the same batch at
    the same moment gives the same data, and the same SHA-256, in both languages; only
    the language the record states it was printed in differs."""
    batch = make_batch()
    qc_passed(batch)
    certification = certification_provisional_sign(actor=qp, batch=batch, password=PASSWORD)
    document = BatchRecordDocument.objects.get(certification=certification)
    at = timezone.now()

    contents = {}
    for language in ("en", "ru"):
        document.language = language
        # The active language is the reader's too, as in a request or a worker that kept it.
        with translation.override(language):
            contents[language] = documents.record_content(document, generated_at=at)
    english, russian = contents["en"], contents["ru"]

    assert russian.data["document"]["language"] == "ru"
    assert russian.data["sections"] == english.data["sections"]
    as_english = {**russian.data, "document": {**russian.data["document"], "language": "en"}}
    assert canonical_json(as_english) == english.data_json
    assert hashlib.sha256(canonical_json(as_english)).hexdigest() == english.data_sha256
    # Each record with its own language: identical but for that one stated field.
    document.language = "ru"
    with translation.override("en"):
        again = documents.record_content(document, generated_at=at)
    assert (again.data_json, again.data_sha256) == (russian.data_json, russian.data_sha256)
    assert russian.data["sections"]["batch"]["state_label"] == "Provisionally released"
    # Not a vacuous comparison: what the Russian record prints is Russian.
    printed = {}
    for language, content in contents.items():
        document.language = language
        printed[language] = documents.render_batch_record_html(document, content=content)
    assert "Выпущена условно" in printed["ru"]
    assert "Выпущена условно" not in printed["en"]


def test_language_is_the_requesters_active_language_when_the_profile_has_none(make_batch, auditor):
    batch = make_batch()
    with translation.override("ru"):
        russian = documents.batch_record_request(actor=auditor, batch=batch, purpose=DocumentPurpose.EXPORT)
    with translation.override("en"):
        english = documents.batch_record_request(actor=auditor, batch=batch, purpose=DocumentPurpose.EXPORT)

    assert (russian.language, english.language) == ("ru", "en")


def test_profile_language_wins_over_the_active_one(make_batch, auditor):
    profile_language_set(actor=auditor, language="ru")
    with translation.override("en"):
        document = documents.batch_record_request(actor=auditor, batch=make_batch(), purpose=DocumentPurpose.EXPORT)

    assert document.language == "ru"


def test_signature_and_certification_labels_are_translated_for_display():
    with translation.override("ru"):
        assert translation.gettext(Meaning.PERFORMED.label) == "Выполнено"
        assert translation.gettext(Meaning.VERIFIED.label) == "Верифицировано"
        assert translation.gettext(CertificationKind.PROVISIONAL.label) == "Условная (предварительная)"
        assert translation.gettext(CertificationDecision.REJECTED.label) != "Rejected"
    # stored and signed values stay English
    assert Meaning.PERFORMED.label == "Performed"


def test_a_request_through_the_api_takes_the_language_the_client_asks_for(make_batch, auditor, client_for):
    batch = make_batch()
    response = client_for(auditor).post(f"/api/v1/batches/{batch.pk}/records/", "{}", content_type="application/json",
                                        headers={"Accept-Language": "ru"})

    assert response.status_code == 202, response.content
    assert response.json()["language"] == "ru"
    assert BatchRecordDocument.objects.get(pk=response.json()["id"]).language == "ru"


def test_running_headers_never_paste_a_translated_text_into_css_unescaped():
    content = documents.css_content('Стр. "%(page)s" \\ }%(pages)s', {"page": "counter(page)", "pages": "counter(pages)"})

    assert content == '"Стр\\2e  \\22 " counter(page) "\\22  \\5c  \\7d " counter(pages)'
