"""Fixtures for signed batch record tests: a test PKI, a local RFC 3161 timestamp
authority, and a batch to make records of.

The timestamp authority is pyHanko's own test TSA (``DummyTimeStamper``) served over
HTTP on the loopback, so the records are timestamped through the same HTTP client
that talks to a hospital's real TSA (``CARMFG_TSA_URL``): no network, no mocks.

Test modules import the fixture functions (``from tests.qc.record_fixtures import
...  # noqa: F401``); fixtures are named through ``name=`` so that a test's argument
never shadows the imported function.
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from asn1crypto import tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID
from django.utils import timezone
from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper

from batches.isbt128 import check_character
from batches.models import (
    Batch,
    Donation,
    MasterBatchRecord,
    MbrStatus,
    Order,
    Patient,
    Product,
    RegulatoryPathway,
)
from qc import pdfsigning
from tests.fixtures.products import effective_specification


@dataclass(frozen=True)
class RecordPki:
    directory: Path
    ca_pem: Path
    ca_cert: x509.Certificate
    ca_key: rsa.RSAPrivateKey

    @property
    def trust_roots(self) -> list[asn1_x509.Certificate]:
        return pdfsigning.load_certificate_file(self.ca_pem)


@pytest.fixture(scope="session", name="record_pki")
def record_pki_fixture(tmp_path_factory) -> RecordPki:
    """The demo PKI of qc.pdfsigning, made once per test process in a temporary dir."""
    directory = tmp_path_factory.mktemp("pki")
    files = pdfsigning.ensure_demo_pki(directory)
    ca_key = serialization.load_pem_private_key(files["ca_key"].read_bytes(), password=None)
    assert isinstance(ca_key, rsa.RSAPrivateKey)
    return RecordPki(
        directory=directory,
        ca_pem=files["ca_cert"],
        ca_cert=x509.load_pem_x509_certificate(files["ca_cert"].read_bytes()),
        ca_key=ca_key,
    )


@dataclass
class RecordTsa:
    url: str
    stamper: DummyTimeStamper
    requests: list[bytes]


@pytest.fixture(scope="session", name="record_tsa")
def record_tsa_fixture(record_pki):
    """pyHanko's test TSA, with a certificate from the test CA, answering HTTP on 127.0.0.1."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = pdfsigning.issue_certificate(
        issuer_cert=record_pki.ca_cert, issuer_key=record_pki.ca_key, common_name="carmfg test TSA", key=key,
        years=1, extended_key_usage=[ExtendedKeyUsageOID.TIME_STAMPING],
    )
    stamper = DummyTimeStamper(
        tsa_cert=asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER)),
        tsa_key=pdfsigning._private_key_info(key),
    )
    seen: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - the http.server API
            body = self.rfile.read(int(self.headers["Content-Length"]))
            seen.append(body)
            reply = stamper.request_tsa_response(tsp.TimeStampReq.load(body)).dump()
            self.send_response(200)
            self.send_header("Content-Type", "application/timestamp-reply")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, format, *args):  # noqa: A002 - the http.server API
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield RecordTsa(url=f"http://127.0.0.1:{server.server_address[1]}/tsa", stamper=stamper, requests=seen)
    server.shutdown()
    server.server_close()


@pytest.fixture(name="record_settings")
def record_settings_fixture(settings, record_pki, record_tsa, tmp_path):
    """Records signed with the test PKI, timestamped by the test TSA, stored under tmp."""
    settings.CARMFG_PKI_DIR = record_pki.directory
    settings.CARMFG_SIGNING_KEY_FILE = None
    settings.CARMFG_SIGNING_CERT_FILE = None
    settings.CARMFG_SIGNING_CA_FILE = None
    settings.CARMFG_TSA_URL = record_tsa.url
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings


def make_batch(site, *, number: str = "CT-2026-0001", din: str = "W000126000123"):
    """Starting state: a planned batch with its product, MBR, patient, order and DIN."""
    product = Product.objects.create(
        site=site, code=f"cd19-{number.lower()}", name="Anti-CD19 CAR-T (ARI-0001-like)",
        pathway=RegulatoryPathway.HOSPITAL_EXEMPTION, product_code="S1234", fraction_percents=[10, 30, 60],
    )
    # A batch pins the product's effective specification when it is created.
    effective_specification(product)
    mbr = MasterBatchRecord.objects.create(
        site=site, product=product, version=1, title="CD19 CAR-T manufacturing", status=MbrStatus.EFFECTIVE,
        effective_at=timezone.now(),
    )
    patient = Patient.objects.create(
        site=site, pseudonym=f"P-{number}", initials="AK", birth_year=1978, hospital_record_number=f"MRN-{number}",
        wristband_code=f"WB-{number}", weight_kg=Decimal("72.5"), weight_measured_on=dt.date(2026, 11, 1),
    )
    order = Order.objects.create(
        site=site, number=f"ORD-{number}", patient=patient, product=product, indication="r/r B-ALL",
        treating_physician="Dr. N. Ivanova", target_dose_cells_per_kg=Decimal("1000000"),
        planned_collection_date=dt.date(2026, 11, 2),
    )
    donation = Donation.objects.create(site=site, order=order, din=din, check_character=check_character(din))
    return Batch.objects.create(
        site=site, number=number, order=order, donation=donation, product=product, mbr=mbr,
        created_at=timezone.now(),
    )


@pytest.fixture(name="eager_celery")
def eager_celery_fixture():
    """Tasks queued by the code under test run in this process, whatever REDIS_URL says."""
    from carmfg.celery import app

    saved = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager, app.conf.task_eager_propagates = True, True
    yield app
    app.conf.task_always_eager, app.conf.task_eager_propagates = saved


@pytest.fixture(name="record_batch")
def record_batch_fixture(site):
    return make_batch(site)
