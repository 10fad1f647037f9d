"""The ledger's REST API over TLS with client certificates: real handshakes against the real gunicorn,
who may read, the probes' paths, and certificates rotated in place (distsum/tls.py,
ledger_svc/web/guards.py, gunicorn_conf.py)."""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
import urllib.error

import pytest
from cryptography import x509

from distsum.clients.ledger import LedgerClient
from distsum.tls import CertificateExpiry
from localstack.certificates import HARNESS_IDENTITY, CertificateAuthority
from localstack.stack import Ledger, LocalStack
from tests.integration.conftest import log_records, rotate_server_certificate
from tests.services import new_id, sample

STRANGER = "spiffe://distsum.local/stranger"


def _as(ledger: Ledger, context: ssl.SSLContext) -> LedgerClient:
    return LedgerClient(ledger.url, context=context)


def test_only_allowed_identities_read_and_the_probes_need_no_certificate(tls_stack: LocalStack) -> None:
    assert tls_stack.tls is not None
    tls = tls_stack.tls
    ledger = tls_stack.ledger()
    tls_stack.sum_service().client().add(new_id(), 2, 3)
    assert ledger.client.wait_count(1)["total"] == "5"

    no_certificate = ssl.create_default_context(cadata=tls.ca.cert_pem.decode())
    status, body = _as(ledger, no_certificate).get("/v1/total")
    assert (status, body["error"]) == (401, "unauthenticated"), body
    assert "client certificate is required" in body["message"]
    # The kubelet's HTTPS readiness probe has no certificate either.
    assert _as(ledger, no_certificate).get("/readyz")[0] == 200

    status, body = _as(ledger, tls.ssl_context(tls.issue_client(STRANGER))).get("/v1/entries")
    assert (status, body["error"]) == (403, "permission_denied"), body
    assert STRANGER in body["message"]

    other = CertificateAuthority("another CA").issue(STRANGER, uris=[STRANGER], client=True)
    with pytest.raises((ssl.SSLError, urllib.error.URLError, ConnectionError)):
        _as(ledger, tls.ssl_context(other)).get("/v1/total")

    records = log_records(ledger.process)
    refusals = [(r["msg"], r.get("identity")) for r in records if str(r.get("msg", "")).startswith("refused")]
    assert refusals == [("refused: no client certificate", None), ("refused: identity not allowed", STRANGER)]
    assert (HARNESS_IDENTITY, "/v1/total") in [
        (r["identity"], r["target"]) for r in records if r.get("msg") == "audit"
    ]


def _host_port(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("https://").rsplit(":", 1)
    return host, int(port)


def test_certificates_rotated_in_place_are_served_to_new_connections(tls_stack: LocalStack) -> None:
    assert tls_stack.tls is not None
    tls = tls_stack.tls
    ledger = tls_stack.ledger()
    rotate_server_certificate(tls, *_host_port(ledger.url))
    assert ledger.client.total()["count"] == 0
    # The metrics port (the supervisor, not the REST workers) reports the served certificate's expiry.
    served = x509.load_pem_x509_certificate(tls.server_cert_file.read_bytes())
    expiry = sample(ledger.metrics_url, CertificateExpiry.NAME, role="server")
    assert expiry == served.not_valid_after_utc.timestamp()


def test_the_cli_reads_the_total_over_mutual_tls(tls_stack: LocalStack) -> None:
    assert tls_stack.tls is not None
    ledger = tls_stack.ledger()
    env = {
        **os.environ,
        "DISTSUM_TLS_CA_FILE": str(tls_stack.tls.ca_file),
        "DISTSUM_TLS_CERT_FILE": str(tls_stack.tls.client_cert_file),
        "DISTSUM_TLS_KEY_FILE": str(tls_stack.tls.client_key_file),
    }
    total = subprocess.run(
        [sys.executable, "-m", "distsum.cli", "total", "--ledger-url", ledger.url],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    assert (total.returncode, total.stdout.strip()) == (0, "0"), total.stderr
