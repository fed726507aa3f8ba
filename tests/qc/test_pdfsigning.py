"""Keys, PAdES certification signatures and their validation (qc.pdfsigning).

Real files throughout: the demo PKI on disk, WeasyPrint PDFs, pyHanko signatures,
pyHanko's own test TSA over HTTP on the loopback, poppler's pdfsig.
"""

from __future__ import annotations

import asyncio
import os
import socket
import stat
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import given
from hypothesis import strategies as st
from weasyprint import HTML

from qc import pdfsigning
from tests.fixtures.services import service_missing
from tests.qc.record_fixtures import record_pki_fixture, record_settings_fixture, record_tsa_fixture  # noqa: F401

SIGN: dict[str, Any] = {"signer_name": "Test Cell Therapy Unit (carmfg)", "reason": "Test certification", "location": "Test site"}


@pytest.fixture(scope="module")
def plain_pdf() -> bytes:
    return HTML(string="<h1>Batch CT-1</h1><p>Released.</p>").write_pdf()


def _require_pdfsig() -> None:
    if not pdfsigning.pdfsig_report(os.devnull).available:
        service_missing("poppler's pdfsig is not installed (apt-get install poppler-utils)")


# --- keys -----------------------------------------------------------------------------


def test_demo_pki_certifies_a_signing_key_and_says_it_is_not_for_production(tmp_path):
    files = pdfsigning.ensure_demo_pki(tmp_path)

    ca = x509.load_pem_x509_certificate(files["ca_cert"].read_bytes())
    cert = x509.load_pem_x509_certificate(files["cert"].read_bytes())
    assert "not for production" in ca.subject.rfc4514_string()
    assert "not for production" in cert.subject.rfc4514_string()
    assert cert.issuer == ca.subject
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical
    assert usage.value.digital_signature
    assert usage.value.content_commitment
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    for private in (files["key"], files["ca_key"]):
        assert stat.S_IMODE(private.stat().st_mode) == 0o600


def test_demo_pki_is_made_once_even_when_first_used_concurrently(tmp_path):
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: pdfsigning.ensure_demo_pki(tmp_path), range(4)))
    certs = {r["cert"].read_bytes() for r in results}
    assert len(certs) == 1
    assert pdfsigning.ensure_demo_pki(tmp_path)["cert"].read_bytes() in certs
    assert not list(tmp_path.glob("*.tmp"))


def test_production_refuses_to_sign_without_the_hospitals_key(settings, tmp_path, plain_pdf):
    settings.PRODUCTION = True
    settings.CARMFG_PKI_DIR = tmp_path
    settings.CARMFG_SIGNING_KEY_FILE = settings.CARMFG_SIGNING_CERT_FILE = settings.CARMFG_SIGNING_CA_FILE = None

    with pytest.raises(pdfsigning.SigningNotConfigured, match="CARMFG_SIGNING_KEY_FILE"):
        pdfsigning.sign_pdf(plain_pdf, **SIGN)
    assert not list(tmp_path.iterdir()), "no demo key may be made in production"


def test_configured_hospital_key_is_used_instead_of_the_demo_key(settings, record_pki, tmp_path):
    files = pdfsigning.ensure_demo_pki(record_pki.directory)
    settings.PRODUCTION = True
    settings.CARMFG_PKI_DIR = tmp_path / "unused"
    settings.CARMFG_SIGNING_KEY_FILE = str(files["key"])
    settings.CARMFG_SIGNING_CERT_FILE = str(files["cert"])
    settings.CARMFG_SIGNING_CA_FILE = str(files["ca_cert"])

    identity = pdfsigning.signing_identity()

    assert identity.demo is False
    assert "demo document signer" in identity.subject
    assert [pdfsigning.certificate_fingerprint(c) for c in identity.trust_roots] == [
        pdfsigning.certificate_fingerprint(c) for c in record_pki.trust_roots
    ]
    assert not (tmp_path / "unused").exists()


def test_a_certificate_that_does_not_belong_to_the_key_is_refused(settings, record_pki, tmp_path):
    files = pdfsigning.ensure_demo_pki(record_pki.directory)
    other_key = tmp_path / "other-key.pem"
    other_key.write_bytes(
        rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    settings.CARMFG_SIGNING_KEY_FILE = str(other_key)
    settings.CARMFG_SIGNING_CERT_FILE = str(files["cert"])
    settings.CARMFG_SIGNING_CA_FILE = str(files["ca_cert"])

    with pytest.raises(pdfsigning.SigningKeyError, match="does not belong to the key"):
        pdfsigning.signing_identity()


def test_key_settings_must_be_given_together(settings, record_pki):
    settings.CARMFG_SIGNING_KEY_FILE = str(record_pki.directory / "signing-key.pem")
    settings.CARMFG_SIGNING_CERT_FILE = None
    settings.CARMFG_SIGNING_CA_FILE = None

    with pytest.raises(pdfsigning.SigningKeyError, match="together"):
        pdfsigning.signing_identity()


# --- signing and validating --------------------------------------------------------------


def test_signed_pdf_is_certified_no_changes_timestamped_and_trusted(record_settings, record_pki, record_tsa, plain_pdf):
    asked_before = len(record_tsa.requests)
    started = time.perf_counter()
    signed = pdfsigning.sign_pdf(plain_pdf, **SIGN)
    signing_s = time.perf_counter() - started

    started = time.perf_counter()
    verdict = pdfsigning.validate_pdf(signed, trust_roots=record_pki.trust_roots, require_timestamp=True)
    validating_s = time.perf_counter() - started

    assert verdict.problems == []
    assert verdict.signature_count == 1
    assert verdict.intact
    assert verdict.trusted
    assert verdict.certified
    assert verdict.certified_no_changes
    assert verdict.covers_entire_file
    assert verdict.coverage == "ENTIRE_FILE"
    assert verdict.modification_level == "NONE"
    assert verdict.timestamp_present
    assert verdict.timestamp_valid
    assert verdict.timestamp_time is not None
    assert verdict.signing_time == verdict.timestamp_time
    # (pyHanko asks once more beforehand, for a sample token to size the signature)
    assert len(record_tsa.requests) > asked_before, "the timestamp came from the configured TSA over HTTP"
    assert verdict.reason == SIGN["reason"]
    assert "demo document signer" in verdict.signer_subject
    assert signing_s < 10
    assert validating_s < 5


def test_without_a_tsa_the_signature_has_no_timestamp_and_requiring_one_fails(record_settings, record_pki, plain_pdf):
    record_settings.CARMFG_TSA_URL = None
    signed = pdfsigning.sign_pdf(plain_pdf, **SIGN)

    assert pdfsigning.validate_pdf(signed, trust_roots=record_pki.trust_roots).ok
    verdict = pdfsigning.validate_pdf(signed, trust_roots=record_pki.trust_roots, require_timestamp=True)
    assert not verdict.timestamp_present
    assert any("no RFC 3161 timestamp" in p for p in verdict.problems)


def test_a_timestamper_can_be_given_directly(record_settings, record_pki, record_tsa, plain_pdf):
    record_settings.CARMFG_TSA_URL = None
    signed = pdfsigning.sign_pdf(plain_pdf, **SIGN, timestamper=record_tsa.stamper)

    verdict = pdfsigning.validate_pdf(signed, trust_roots=record_pki.trust_roots, require_timestamp=True)
    assert verdict.ok
    assert verdict.timestamp_valid


def test_a_configured_tsa_that_does_not_answer_makes_signing_fail(record_settings, plain_pdf):
    with socket.socket() as sock:  # a loopback port with nobody listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    record_settings.CARMFG_TSA_URL = f"http://127.0.0.1:{port}/"

    with pytest.raises(Exception):  # noqa: B017, PT011 - pyHanko's error type; the point is: no unstamped record
        pdfsigning.sign_pdf(plain_pdf, **SIGN)


def test_a_signature_from_another_ca_is_not_trusted(record_settings, plain_pdf):
    signed = pdfsigning.sign_pdf(plain_pdf, **SIGN)
    stranger, _ = pdfsigning.make_ca("Some other CA")
    roots = pdfsigning.load_certificates(stranger.public_bytes(serialization.Encoding.PEM))

    verdict = pdfsigning.validate_pdf(signed, trust_roots=roots)

    assert verdict.intact
    assert not verdict.trusted
    assert any("does not chain to the given CA" in p for p in verdict.problems)


def test_an_unsigned_or_unreadable_file_is_reported_not_raised(record_pki, plain_pdf):
    assert pdfsigning.validate_pdf(plain_pdf, trust_roots=record_pki.trust_roots).problems == [
        "the file carries no signature"
    ]
    garbage = pdfsigning.validate_pdf(b"%PDF-1.7\nnot really", trust_roots=record_pki.trust_roots)
    assert not garbage.ok
    assert "not a readable PDF" in garbage.problems[0]


def test_signing_and_validating_work_inside_a_running_event_loop(record_settings, record_pki, plain_pdf):
    async def inside_a_loop():
        signed = pdfsigning.sign_pdf(plain_pdf, **SIGN)
        return pdfsigning.validate_pdf(signed, trust_roots=record_pki.trust_roots)

    assert asyncio.run(inside_a_loop()).ok


# --- poppler's pdfsig -----------------------------------------------------------------------


def test_pdfsig_reports_the_signature_valid_and_the_total_document_signed(record_settings, plain_pdf, tmp_path):
    _require_pdfsig()
    path = tmp_path / "signed.pdf"
    path.write_bytes(pdfsigning.sign_pdf(plain_pdf, **SIGN))

    report = pdfsigning.pdfsig_report(path)

    assert report.ok, report.output
    [signature] = report.signatures
    assert signature.valid
    assert signature.total_document_signed
    assert "demo document signer" in signature.signer_common_name


def test_pdfsig_output_is_parsed_for_mismatch_and_partial_coverage():
    output = """Digital Signature Info of: x.pdf
Signature #1:
  - Signature Field Name: carmfg-batch-record
  - Signer Certificate Common Name: Seal
  - Signing Time: Nov 23 2026 09:34:22
  - Signed Ranges: [0 - 8218], [24368 - 25049]
  - Not total document signed
  - Signature Validation: Digest Mismatch.
"""
    [signature] = pdfsigning.parse_pdfsig_output(output)
    assert signature.signature_validation == "Digest Mismatch."
    assert not signature.valid
    assert not signature.total_document_signed
    assert not pdfsigning.PdfsigReport(available=True, output=output, signatures=[signature]).ok


@given(st.text())
def test_pdfsig_parser_never_fails_and_never_invents_a_valid_signature(text):
    for signature in pdfsigning.parse_pdfsig_output(text):
        assert signature.valid == (signature.signature_validation == "Signature is Valid.")
    if "Signature #" not in text:
        assert pdfsigning.parse_pdfsig_output(text) == []
