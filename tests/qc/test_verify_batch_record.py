"""``manage.py verify_batch_record``: a record as issued verifies; every kind of
tampering fails with a non-zero exit and says why."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

from qc import documents, pdfsigning
from qc.models import DocumentPurpose
from qc.tasks import batch_record_generate
from qc.verification import verify_record
from tests.fixtures.services import REPO_ROOT, service_missing
from tests.qc.record_fixtures import (  # noqa: F401
    record_batch_fixture,
    record_pki_fixture,
    record_settings_fixture,
    record_tsa_fixture,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def issued(record_settings, record_batch, auditor, tmp_path):
    """A record issued through the service and the task, copied out as a reader gets it."""
    document = documents.batch_record_request(actor=auditor, batch=record_batch, purpose=DocumentPurpose.EXPORT)
    batch_record_generate.apply(args=[document.pk]).get()
    document.refresh_from_db()
    path = tmp_path / "record.pdf"
    with document.file.open("rb") as fh:
        path.write_bytes(fh.read())
    return document, path


def _verify(path, *args) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("verify_batch_record", str(path), *args, stdout=out, stderr=err)
    except CommandError as exc:
        return exc.returncode, out.getvalue() + str(exc)
    return 0, out.getvalue()


def _has_pdfsig() -> bool:
    return pdfsigning.pdfsig_report(os.devnull).available


def test_the_issued_record_verifies_with_pyhanko_pdfsig_and_the_register(issued, record_pki):
    document, path = issued

    code, output = _verify(path, "--ca", str(record_pki.ca_pem))

    assert code == 0, output
    assert "VERDICT: VERIFIED" in output
    assert document.sha256 in output
    assert f"document {document.pk}" in output
    assert "RFC 3161 timestamp:   valid" in output
    if _has_pdfsig():
        assert "pdfsig #1:            Signature is Valid. total document signed" in output
    else:
        service_missing("poppler's pdfsig is not installed (apt-get install poppler-utils)")


def test_the_installation_ca_is_trusted_by_default(issued):
    code, output = _verify(issued[1], "--no-pdfsig")
    assert code == 0, output


def test_a_changed_byte_inside_the_signed_range_fails(issued, record_pki, tmp_path):
    _, path = issued
    data = bytearray(path.read_bytes())
    at = data.index(b"/Producer")  # document information, inside the first signed range
    assert at < data.index(b"/ByteRange")
    data[at + len(b"/Producer (")] ^= 0x01
    tampered = tmp_path / "byte.pdf"
    tampered.write_bytes(bytes(data))

    code, output = _verify(tampered, "--ca", str(record_pki.ca_pem))

    assert code == 1
    assert "VERDICT: NOT VERIFIED" in output
    assert "the document was changed after signing" in output
    assert "not one the system issued" in output
    if _has_pdfsig():
        assert "Digest Mismatch." in output


def test_an_incremental_update_after_signing_fails(issued, record_pki, tmp_path):
    _, path = issued
    writer = IncrementalPdfFileWriter(io.BytesIO(path.read_bytes()))
    writer.root["/CarmfgNote"] = generic.TextStringObject("quantity corrected after release")
    writer.update_root()
    out = io.BytesIO()
    writer.write(out)
    tampered = tmp_path / "incremental.pdf"
    tampered.write_bytes(out.getvalue())

    code, output = _verify(tampered, "--ca", str(record_pki.ca_pem))

    assert code == 1
    assert "does not cover the whole file" in output
    assert "not one the system issued" in output


def test_bytes_appended_after_eof_fail(issued, record_pki, tmp_path):
    _, path = issued
    tampered = tmp_path / "appended.pdf"
    tampered.write_bytes(path.read_bytes() + b"\n% an innocent-looking comment\n")

    code, output = _verify(tampered, "--ca", str(record_pki.ca_pem))

    assert code == 1
    assert "does not cover the whole file" in output
    assert "not one the system issued" in output


def test_a_validly_signed_pdf_the_system_did_not_issue_fails(issued, record_pki, tmp_path):
    document, path = issued
    # Same key, same layout, signed again: a perfect signature, but not what was issued.
    resigned = pdfsigning.sign_pdf(
        documents.render_pdf("<p>Batch record of something else</p>"),
        signer_name="x", reason="y", location="z",
    )
    other = tmp_path / "other.pdf"
    other.write_bytes(resigned)

    code, output = _verify(other, "--ca", str(record_pki.ca_pem), "--no-pdfsig")

    assert code == 1
    assert "not one the system issued" in output
    assert "expected one embedded data file" in output


def test_a_record_checked_against_another_ca_fails(issued, tmp_path):
    stranger, _ = pdfsigning.make_ca("Some other CA")
    from cryptography.hazmat.primitives import serialization

    ca = tmp_path / "stranger.pem"
    ca.write_bytes(stranger.public_bytes(serialization.Encoding.PEM))

    code, output = _verify(issued[1], "--ca", str(ca), "--no-pdfsig")

    assert code == 1
    assert "does not chain to the given CA" in output


def test_only_the_sites_a_user_audits_count_as_issuers(issued, record_pki, other_site):
    document, path = issued
    pdf = path.read_bytes()

    mine = verify_record(pdf, trust_roots=record_pki.trust_roots, site_ids=[document.site_id])
    theirs = verify_record(pdf, trust_roots=record_pki.trust_roots, site_ids=[other_site.pk])

    assert mine.ok
    assert mine.document == document
    assert not theirs.ok
    assert theirs.document is None


def test_offline_verification_needs_the_ca_and_checks_the_signature_alone(issued, record_pki):
    code, output = _verify(issued[1], "--offline")
    assert code == 2
    assert "needs --ca" in output

    code, output = _verify(issued[1], "--offline", "--ca", str(record_pki.ca_pem), "--no-pdfsig")
    assert code == 0, output
    assert "not checked (offline)" in output


def test_the_command_exit_status_is_what_a_script_sees(issued, record_pki, tmp_path):
    """A real process, as a hospital's script would run it (offline: no shared test DB)."""
    _, path = issued
    appended = tmp_path / "appended.pdf"
    appended.write_bytes(path.read_bytes() + b"\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "CARMFG_SIGNING_"))}
    env.update(CARMFG_ENV="test", CARMFG_PKI_DIR=str(record_pki.directory))

    def run(pdf) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "manage.py", "verify_batch_record", str(pdf), "--offline", "--ca", str(record_pki.ca_pem)],
            cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
        )

    # (exit 0 for a good record is the call_command tests' "no CommandError")
    bad = run(appended)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "NOT VERIFIED" in bad.stdout + bad.stderr


def test_json_output_carries_the_verdict(issued, record_pki):
    import json

    out = io.StringIO()
    call_command("verify_batch_record", str(issued[1]), "--ca", str(record_pki.ca_pem), "--json", "--no-pdfsig", stdout=out)
    verdict = json.loads(out.getvalue())

    assert verdict["ok"] is True
    assert verdict["sha256"] == issued[0].sha256
    assert verdict["signature"]["certified_no_changes"] is True
    assert verdict["audit_chain_head"][1] == issued[0].audit_chain_seq


# --- the "Verify a record" page ----------------------------------------------------------------


def _upload(client, content: bytes):
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.urls import reverse

    return client.post(reverse("qc:record_verify"), {"file": SimpleUploadedFile("r.pdf", content, "application/pdf")})


def test_an_auditor_verifies_an_uploaded_record(issued, client_for, auditor):
    document, path = issued
    client = client_for(auditor)

    good = _upload(client, path.read_bytes())
    bad = _upload(client, path.read_bytes() + b"\n")

    assert good.status_code == 200
    assert good.context["verdict"].ok
    assert "Verified: this is the record as issued" in good.content.decode()
    assert document.sha256 in good.content.decode()
    assert not bad.context["verdict"].ok
    assert "does not cover the whole file" in bad.content.decode()


def test_the_page_never_confirms_another_sites_record(issued, client_for, other_site_user):
    response = _upload(client_for(other_site_user), issued[1].read_bytes())

    verdict = response.context["verdict"]
    assert not verdict.ok
    assert verdict.document is None
    assert "not one the system issued" in response.content.decode()


def test_people_who_may_not_read_the_audit_trail_do_not_see_the_page(issued, client_for, technician):
    from tests.conftest import assert_hidden

    assert_hidden(client_for(technician), "/qc/records/verify/")


def test_an_upload_over_the_limit_is_refused_without_a_verdict(issued, client_for, auditor, settings):
    settings.CARMFG_VERIFY_UPLOAD_MAX_MB = 0

    response = _upload(client_for(auditor), issued[1].read_bytes())

    assert response.context["verdict"] is None
    assert "larger than 0 MB" in response.content.decode()


# --- what docs/verify-offline.md tells a reader to run -------------------------------------------


def test_pyhankos_cli_with_the_ca_alone_validates_the_record_and_shows_appended_bytes(issued, record_pki, tmp_path):
    """The documented third-party check. It still says VALID (and exits 0) for appended
    bytes and only its coverage line tells: why the docs insist on that line and on
    comparing the SHA-256."""
    from pathlib import Path

    cli = Path(sys.executable).with_name("pyhanko")
    if not cli.exists():
        service_missing("pyhanko-cli is not installed (dev dependency; uv sync)")
    _, path = issued
    appended = tmp_path / "appended.pdf"
    appended.write_bytes(path.read_bytes() + b"\n")

    def validate(pdf) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(cli), "sign", "validate", "--trust", str(record_pki.ca_pem), "--trust-replace", "--pretty-print", str(pdf)],
            capture_output=True, text=True, timeout=120, check=False,
        )

    good, bad = validate(path), validate(appended)

    assert good.returncode == 0, good.stdout + good.stderr
    assert "The signature covers the entire file." in good.stdout
    assert "The signature is judged VALID." in good.stdout
    assert "The TSA certificate is trusted." in good.stdout
    assert "The signature does not cover the entire file." in bad.stdout
