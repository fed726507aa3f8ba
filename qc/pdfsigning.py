"""Signing keys, PDF signatures and their validation (PAdES, pyHanko).

A signed batch record must be checkable years later, offline, by someone who trusts
only the hospital's CA certificate: so every record carries one certification
signature (DocMDP "no changes allowed"), the signer's validation data in the same
revision, and an RFC 3161 timestamp when a timestamp authority is configured.

Keys come from settings (``CARMFG_SIGNING_KEY_FILE``, ``CARMFG_SIGNING_CERT_FILE``,
``CARMFG_SIGNING_CA_FILE``), i.e. from the hospital's PKI. Without them, outside
production, a local demo CA and signing certificate are made on first use under
``CARMFG_PKI_DIR``; in production the first signing refuses to run instead.

pyHanko's synchronous API cannot run inside a running asyncio event loop, so every
call here goes through its asynchronous API, in a thread of its own when a loop is
already running.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import fcntl
import functools
import hashlib
import os
import re
import shutil
import subprocess
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any, TypeVar

from asn1crypto import keys as asn1_keys
from asn1crypto import pem as asn1_pem
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_noop
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers
from pyhanko.sign.signers.pdf_signer import DSSContentSettings, SigDSSPlacementPreference
from pyhanko.sign.timestamps import HTTPTimeStamper, TimeStamper
from pyhanko.sign.validation import async_validate_pdf_signature, read_certification_data
from pyhanko.sign.validation.status import SignatureCoverageLevel
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.registry import SimpleCertificateStore

from carmfg.texts import Text

DEMO_CA_NAME = "carmfg demo CA — not for production"
DEMO_SIGNER_NAME = "carmfg demo document signer — not for production"
DEMO_ORGANISATION = "carmfg demonstration (not a real hospital)"
DEMO_FILES = {
    "ca_cert": "demo-ca.pem",
    "ca_key": "demo-ca-key.pem",
    "cert": "signing-cert.pem",
    "key": "signing-key.pem",
}
RSA_KEY_BITS = 3072  # RSA, not ECDSA: every PDF reader, poppler's NSS and Adobe's included, checks it
DEMO_CA_YEARS = 10
DEMO_SIGNER_YEARS = 5
TSA_TIMEOUT_SECONDS = 20
PDFSIG_TIMEOUT_SECONDS = 60

T = TypeVar("T")


class SigningKeyError(ImproperlyConfigured):
    """The configured key, certificate or CA files are unreadable or do not match."""


class SigningNotConfigured(SigningKeyError):
    """Production has no signing key: a record must never be signed by a demo key."""


# --- keys and certificates ------------------------------------------------------------


@dataclass(frozen=True)
class SigningIdentity:
    """The key that signs records, its certificate, and the CA certificates to trust."""

    signing_cert: asn1_x509.Certificate
    signing_key: asn1_keys.PrivateKeyInfo
    other_certs: tuple[asn1_x509.Certificate, ...]
    trust_roots: tuple[asn1_x509.Certificate, ...]
    demo: bool

    @property
    def subject(self) -> str:
        return certificate_subject(self.signing_cert)

    @property
    def fingerprint_sha256(self) -> str:
        return certificate_fingerprint(self.signing_cert)


def certificate_subject(cert: asn1_x509.Certificate) -> str:
    """The subject as an RFC 4514 string, most specific first (``CN=…,O=…,C=…``)."""
    return x509.load_der_x509_certificate(cert.dump()).subject.rfc4514_string()


def certificate_fingerprint(cert: asn1_x509.Certificate) -> str:
    """SHA-256 of the DER certificate, hex: what ``openssl x509 -fingerprint -sha256`` shows."""
    return hashlib.sha256(cert.dump()).hexdigest()


def load_certificates(data: bytes) -> list[asn1_x509.Certificate]:
    """All certificates of a PEM bundle (or one DER certificate)."""
    if asn1_pem.detect(data):
        return [asn1_x509.Certificate.load(der) for _, _, der in asn1_pem.unarmor(data, multiple=True)]
    return [asn1_x509.Certificate.load(data)]


def load_certificate_file(path: str | os.PathLike) -> list[asn1_x509.Certificate]:
    try:
        certs = load_certificates(Path(path).read_bytes())
    except (OSError, ValueError) as exc:
        raise SigningKeyError(f"cannot read certificates from {path}: {exc}") from exc
    if not certs:
        raise SigningKeyError(f"{path} holds no certificate")
    return certs


def _private_key_info(key: Any) -> asn1_keys.PrivateKeyInfo:
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return asn1_keys.PrivateKeyInfo.load(der)


def _load_key(path: str | os.PathLike, password: str | None) -> Any:
    try:
        data = Path(path).read_bytes()
        return serialization.load_pem_private_key(data, password=password.encode() if password else None)
    except (OSError, ValueError, TypeError) as exc:
        raise SigningKeyError(f"cannot read the signing key {path}: {exc}") from exc


def pki_dir() -> Path:
    configured = getattr(settings, "CARMFG_PKI_DIR", None)
    return Path(configured) if configured else Path(settings.VAR_DIR) / "pki"


def _configured_files() -> tuple[str | None, str | None, str | None]:
    return (
        getattr(settings, "CARMFG_SIGNING_KEY_FILE", None) or None,
        getattr(settings, "CARMFG_SIGNING_CERT_FILE", None) or None,
        getattr(settings, "CARMFG_SIGNING_CA_FILE", None) or None,
    )


def signing_identity() -> SigningIdentity:
    """The identity that signs records now (the hospital's, or the demo one outside production)."""
    key_file, cert_file, ca_file = _configured_files()
    if key_file or cert_file or ca_file:
        if not (key_file and cert_file and ca_file):
            raise SigningKeyError(
                "CARMFG_SIGNING_KEY_FILE, CARMFG_SIGNING_CERT_FILE and CARMFG_SIGNING_CA_FILE "
                "must be set together"
            )
        paths = (key_file, cert_file, ca_file)
        demo = False
    else:
        if getattr(settings, "PRODUCTION", False):
            raise SigningNotConfigured(
                "Refusing to sign a batch record in production without the hospital's signing key: "
                "set CARMFG_SIGNING_KEY_FILE, CARMFG_SIGNING_CERT_FILE and CARMFG_SIGNING_CA_FILE "
                "(see docs/verify-offline.md)."
            )
        files = ensure_demo_pki(pki_dir())
        paths = (str(files["key"]), str(files["cert"]), str(files["ca_cert"]))
        demo = True
    password = getattr(settings, "CARMFG_SIGNING_KEY_PASSWORD", None) or None
    return _load_identity(paths, _mtimes(paths), password, demo)


def _mtimes(paths: Iterable[str]) -> tuple[int, ...]:
    try:
        return tuple(os.stat(p).st_mtime_ns for p in paths)
    except OSError as exc:
        raise SigningKeyError(f"signing key files cannot be read: {exc}") from exc


@functools.lru_cache(maxsize=8)
def _load_identity(paths: tuple[str, str, str], _mtimes: tuple[int, ...], password: str | None, demo: bool) -> SigningIdentity:
    key_file, cert_file, ca_file = paths
    key = _load_key(key_file, password)
    certs = load_certificate_file(cert_file)
    roots = load_certificate_file(ca_file)
    leaf = certs[0]
    ours = serialization.load_der_public_key(leaf.public_key.dump())
    if ours.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) != key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ):
        raise SigningKeyError(f"the certificate in {cert_file} does not belong to the key in {key_file}")
    return SigningIdentity(
        signing_cert=leaf,
        signing_key=_private_key_info(key),
        other_certs=tuple(certs[1:]) + tuple(roots),
        trust_roots=tuple(roots),
        demo=demo,
    )


def trust_roots() -> list[asn1_x509.Certificate]:
    """The CA certificates a record signed by this installation must chain to."""
    return list(signing_identity().trust_roots)


# --- the demo PKI ---------------------------------------------------------------------


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, DEMO_ORGANISATION),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _pem_key(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def _pem_cert(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def issue_certificate(
    *,
    issuer_cert: x509.Certificate,
    issuer_key: rsa.RSAPrivateKey,
    common_name: str,
    key: rsa.RSAPrivateKey,
    years: int,
    extended_key_usage: list[x509.ObjectIdentifier] | None = None,
) -> x509.Certificate:
    """An end-entity certificate from a CA of ours (key usage: digitalSignature + nonRepudiation)."""
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(issuer_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=365 * years))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=True, key_encipherment=False, data_encipherment=False,
                key_agreement=False, key_cert_sign=False, crl_sign=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False
        )
    )
    if extended_key_usage:
        builder = builder.add_extension(x509.ExtendedKeyUsage(extended_key_usage), critical=True)
    return builder.sign(issuer_key, hashes.SHA256())


def make_ca(common_name: str, *, years: int = DEMO_CA_YEARS) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=RSA_KEY_BITS)
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=365 * years))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def ensure_demo_pki(directory: Path) -> dict[str, Path]:
    """Create the demo CA and signing certificate in ``directory`` unless they exist.

    Safe against concurrent first use (web process, Celery workers, parallel tests):
    one process creates the files under an exclusive lock, each file is written
    whole and then renamed into place.
    """
    files = {role: directory / name for role, name in DEMO_FILES.items()}
    if all(path.exists() for path in files.values()):
        return files
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if all(path.exists() for path in files.values()):
                return files
            ca_cert, ca_key = make_ca(DEMO_CA_NAME)
            key = rsa.generate_private_key(public_exponent=65537, key_size=RSA_KEY_BITS)
            cert = issue_certificate(
                issuer_cert=ca_cert, issuer_key=ca_key, common_name=DEMO_SIGNER_NAME, key=key, years=DEMO_SIGNER_YEARS
            )
            _write_private(files["ca_key"], _pem_key(ca_key))
            _write_private(files["key"], _pem_key(key))
            _write_private(files["ca_cert"], _pem_cert(ca_cert))
            # The certificate last: its presence says the set is complete.
            _write_private(files["cert"], _pem_cert(cert))
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return files


# --- running pyHanko's asynchronous API from synchronous code -------------------------


def _run(factory: Callable[[], Awaitable[T]]) -> T:
    async def main() -> T:
        return await factory()

    try:
        asyncio.get_running_loop()
        loop_running = True
    except RuntimeError:
        loop_running = False
    if not loop_running:
        return asyncio.run(main())
    # Called from inside an event loop (an async view, Playwright in the same test
    # process): a nested asyncio.run() is refused, so run in a thread of its own.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="pyhanko") as pool:
        return pool.submit(asyncio.run, main()).result()


# --- signing --------------------------------------------------------------------------


def configured_timestamper() -> TimeStamper | None:
    url = getattr(settings, "CARMFG_TSA_URL", None)
    if not url:
        return None
    return HTTPTimeStamper(url, timeout=TSA_TIMEOUT_SECONDS)


def _validation_context(roots: Iterable[asn1_x509.Certificate], other_certs: Iterable[asn1_x509.Certificate] = (), *, allow_fetching: bool) -> ValidationContext:
    # soft-fail: a CA without CRL/OCSP (the demo CA, many hospital CAs) is still
    # trusted; revocation data the CA does publish is fetched at signing time and
    # embedded, so that validation later needs no network.
    return ValidationContext(
        trust_roots=list(roots), other_certs=list(other_certs), allow_fetching=allow_fetching, revocation_mode="soft-fail"
    )


def sign_pdf(
    pdf_bytes: bytes,
    *,
    signer_name: str,
    reason: str,
    location: str,
    field_name: str = "carmfg-batch-record",
    contact_info: str = "",
    identity: SigningIdentity | None = None,
    timestamper: TimeStamper | None = None,
) -> bytes:
    """Certify ``pdf_bytes`` (PAdES, DocMDP P=1: no change of any kind allowed after it).

    The signature timestamp comes from ``timestamper`` or else from ``CARMFG_TSA_URL``;
    a configured TSA that does not answer makes signing fail (no silent downgrade).
    """
    identity = identity or signing_identity()
    if timestamper is None:
        timestamper = configured_timestamper()
    signer = signers.SimpleSigner(
        signing_cert=identity.signing_cert,
        signing_key=identity.signing_key,
        cert_registry=SimpleCertificateStore.from_certs(list(identity.other_certs)),
    )
    meta = signers.PdfSignatureMetadata(
        field_name=field_name,
        name=signer_name,
        reason=reason,
        location=location,
        contact_info=contact_info or None,
        md_algorithm="sha256",
        certify=True,
        docmdp_permissions=fields.MDPPerm.NO_CHANGES,
        subfilter=fields.SigSeedSubFilter.PADES,
        embed_validation_info=True,
        validation_context=_validation_context(identity.trust_roots, identity.other_certs, allow_fetching=True),
        # Validation data in the signed revision itself: one revision, and the
        # signature covers the entire file (anything after it is tampering).
        dss_settings=DSSContentSettings(placement=SigDSSPlacementPreference.TOGETHER_WITH_SIGNATURE, include_vri=False),
    )
    pdf_signer = signers.PdfSigner(meta, signer=signer, timestamper=timestamper)

    async def sign() -> bytes:
        writer = IncrementalPdfFileWriter(BytesIO(pdf_bytes))
        output = BytesIO()
        await pdf_signer.async_sign_pdf(writer, output=output)
        return output.getvalue()

    return _run(sign)


# --- validation -----------------------------------------------------------------------


@dataclass
class Verdict:
    """What pyHanko says about a record's signature, and everything wrong with it."""

    signature_count: int = 0
    intact: bool = False
    trusted: bool = False
    certified: bool = False
    certified_no_changes: bool = False
    coverage: str = ""
    covers_entire_file: bool = False
    modification_level: str = ""
    timestamp_present: bool = False
    timestamp_valid: bool = False
    timestamp_time: dt.datetime | None = None
    signer_subject: str = ""
    signer_fingerprint_sha256: str = ""
    signing_time: dt.datetime | None = None
    field_name: str = ""
    reason: str = ""
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def validate_pdf(
    pdf_bytes: bytes,
    *,
    trust_roots: Iterable[asn1_x509.Certificate],
    require_timestamp: bool = False,
    allow_fetching: bool = False,
) -> Verdict:
    """Validate the record's one certification signature against ``trust_roots``.

    Offline by default (``allow_fetching=False``): a verifier uses what the file
    carries and the CA certificate it was given, nothing from carmfg's server.
    """
    roots = list(trust_roots)
    verdict = Verdict()
    try:
        return _run(lambda: _validate(pdf_bytes, roots, verdict, require_timestamp, allow_fetching))
    except Exception as exc:  # noqa: BLE001 - a verifier reports, it never crashes on a hostile file
        verdict.problems.append(Text(gettext_noop("the signature could not be validated: %(error)s"),
                                     {"error": f"{type(exc).__name__}: {exc}"}))
        return verdict


async def _validate(pdf_bytes: bytes, roots: list, verdict: Verdict, require_timestamp: bool, allow_fetching: bool) -> Verdict:
    problems = verdict.problems
    try:
        reader = PdfFileReader(BytesIO(pdf_bytes), strict=True)
        signatures = list(reader.embedded_signatures)
    except Exception as exc:  # noqa: BLE001
        problems.append(Text(gettext_noop("not a readable PDF: %(error)s"), {"error": f"{type(exc).__name__}: {exc}"}))
        return verdict
    verdict.signature_count = len(signatures)
    if not signatures:
        problems.append(Text(gettext_noop("the file carries no signature")))
        return verdict
    if len(signatures) > 1:
        problems.append(Text(gettext_noop("the file carries %(n)s signatures; a batch record is issued with exactly one"),
                             {"n": len(signatures)}))
    sig = signatures[0]
    verdict.field_name = sig.field_name or ""
    reason = sig.sig_object.get("/Reason")
    verdict.reason = str(reason) if reason is not None else ""
    context = _validation_context(roots, allow_fetching=allow_fetching)
    status = await async_validate_pdf_signature(sig, signer_validation_context=context, ts_validation_context=context)

    verdict.intact = bool(status.intact and status.valid)
    verdict.trusted = bool(status.trusted)
    verdict.signer_subject = certificate_subject(status.signing_cert)
    verdict.signer_fingerprint_sha256 = certificate_fingerprint(status.signing_cert)
    verdict.coverage = status.coverage.name if status.coverage is not None else "UNKNOWN"
    verdict.covers_entire_file = status.coverage == SignatureCoverageLevel.ENTIRE_FILE
    level = status.modification_level
    verdict.modification_level = level.name if level is not None else "UNKNOWN"

    certification = read_certification_data(reader)
    verdict.certified = certification is not None and certification.author_sig is not None and (
        certification.author_sig.get_object() is sig.sig_object.get_object()
        or certification.author_sig == sig.sig_object
    )
    verdict.certified_no_changes = verdict.certified and sig.docmdp_level == fields.MDPPerm.NO_CHANGES

    ts = status.timestamp_validity
    verdict.timestamp_present = ts is not None
    if ts is not None:
        verdict.timestamp_valid = bool(ts.intact and ts.valid and ts.trusted)
        verdict.timestamp_time = ts.timestamp
    verdict.signing_time = verdict.timestamp_time if verdict.timestamp_valid else status.signer_reported_dt

    if not verdict.intact:
        problems.append(Text(gettext_noop("the signature does not match the signed bytes: the document was changed "
                                          "after signing")))
    if not verdict.trusted:
        indication = status.trust_problem_indic
        if indication is not None:
            problems.append(Text(gettext_noop("the signing certificate does not chain to the given CA certificate "
                                              "(%(why)s)"), {"why": indication.standard_name}))
        else:
            problems.append(Text(gettext_noop("the signing certificate does not chain to the given CA certificate")))
    if not verdict.certified:
        problems.append(Text(gettext_noop("the signature is not the document's certification signature")))
    elif not verdict.certified_no_changes:
        problems.append(Text(gettext_noop("the certification allows later changes; a batch record is certified with "
                                          "'no changes allowed'")))
    if not verdict.covers_entire_file:
        problems.append(Text(
            gettext_noop("the signature does not cover the whole file (coverage %(coverage)s): something was added "
                         "after signing (an incremental update or bytes after %%EOF)"), {"coverage": verdict.coverage}))
    if level is None or level.name != "NONE":
        problems.append(Text(gettext_noop("the document was modified after signing (modification level %(level)s)"),
                             {"level": verdict.modification_level}))
    if status.docmdp_ok is False:
        problems.append(Text(gettext_noop("changes after signing violate the certification's 'no changes allowed'")))
    if ts is not None and not verdict.timestamp_valid:
        problems.append(Text(gettext_noop("the signature timestamp is not valid or not issued by a trusted timestamp "
                                          "authority")))
    if ts is None and require_timestamp:
        problems.append(Text(gettext_noop("the signature carries no RFC 3161 timestamp")))
    return verdict


# --- poppler's pdfsig, a second and independent opinion --------------------------------


@dataclass
class PdfsigSignature:
    signer_common_name: str = ""
    signature_validation: str = ""
    certificate_validation: str = ""
    total_document_signed: bool = False
    signing_time: str = ""

    @property
    def valid(self) -> bool:
        return self.signature_validation == "Signature is Valid."


@dataclass
class PdfsigReport:
    """pdfsig's output, parsed: it exits 0 whatever it found, so its text is the verdict."""

    available: bool
    output: str = ""
    signatures: list[PdfsigSignature] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (
            self.available
            and len(self.signatures) == 1
            and all(sig.valid and sig.total_document_signed for sig in self.signatures)
        )


_PDFSIG_FIELD = re.compile(r"^\s*-\s*(?P<key>[^:]+?):\s*(?P<value>.*)$")


def parse_pdfsig_output(output: str) -> list[PdfsigSignature]:
    signatures: list[PdfsigSignature] = []
    current: PdfsigSignature | None = None
    for line in output.splitlines():
        if re.match(r"^Signature #\d+:", line):
            current = PdfsigSignature()
            signatures.append(current)
            continue
        if current is None:
            continue
        stripped = line.strip()
        if stripped == "- Total document signed":
            current.total_document_signed = True
            continue
        match = _PDFSIG_FIELD.match(line)
        if not match:
            continue
        key, value = match["key"].strip(), match["value"].strip()
        if key == "Signature Validation":
            current.signature_validation = value
        elif key == "Certificate Validation":
            current.certificate_validation = value
        elif key == "Signer Certificate Common Name":
            current.signer_common_name = value
        elif key == "Signing Time":
            current.signing_time = value
    return signatures


def pdfsig_report(path: str | os.PathLike) -> PdfsigReport:
    """Run poppler's ``pdfsig`` on ``path`` (no OCSP: offline) and parse what it prints."""
    executable = shutil.which("pdfsig")
    if executable is None:
        return PdfsigReport(available=False, output="pdfsig (poppler-utils) is not installed")
    result = subprocess.run(  # noqa: S603 - fixed executable, the path is an argument, no shell
        [executable, "-no-ocsp", os.fspath(path)],
        capture_output=True, text=True, timeout=PDFSIG_TIMEOUT_SECONDS, check=False,
        env={**os.environ, "LC_ALL": "C"},
    )
    output = (result.stdout or "") + (result.stderr or "")
    return PdfsigReport(available=True, output=output, signatures=parse_pdfsig_output(result.stdout or ""))


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()

