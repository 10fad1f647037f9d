"""The ledger's REST API over TLS with client certificates: real handshakes against the real gunicorn,
who may read, the probes' paths, and certificates rotated in place (distsum/tls.py,
ledger_svc/web/guards.py, gunicorn_conf.py)."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import ssl
import subprocess
import sys
import urllib.error
from collections.abc import Iterator
from pathlib import Path

import pytest

from distsum.clients.ledger import LedgerClient
from distsum.clients.waiting import wait_until
from localstack.certificates import HARNESS_IDENTITY, CertificateAuthority, LocalTls
from localstack.stack import QUICK_RECOVERY, Ledger, LocalStack
from tests.conftest import Topic
from tests.services import new_id

STRANGER = "spiffe://distsum.local/stranger"


@pytest.fixture
def stack(topic: Topic, tmp_path: Path) -> Iterator[LocalStack]:
    env = {**QUICK_RECOVERY, "LEDGER_GROUP_ID": f"ledger-{topic.name}"}
    with contextlib.ExitStack() as resources:
        yield LocalStack(
            resources, topic.bootstrap, topic.name, tmp_path, env, tls=LocalTls(tmp_path / "tls")
        )


def _as(ledger: Ledger, context: ssl.SSLContext) -> LedgerClient:
    return LedgerClient(ledger.url, context=context)


def test_only_allowed_identities_read_and_the_probes_need_no_certificate(stack: LocalStack) -> None:
    assert stack.tls is not None
    tls = stack.tls
    ledger = stack.ledger()
    stack.sum_service().client().add(new_id(), 2, 3)
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

    text = Path(ledger.process.log_path).read_text(errors="replace")
    records = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    refusals = [
        (r["msg"], r.get("identity")) for r in records if str(r.get("msg", "")).startswith("request refused")
    ]
    assert refusals == [
        ("request refused: no client certificate", None),
        ("request refused: identity not allowed", STRANGER),
    ]
    assert any(r.get("msg") == "audit: request" and r["identity"] == HARNESS_IDENTITY for r in records)


def _served_certificate(url: str, tls: LocalTls) -> bytes:
    host, port = url.removeprefix("https://").rsplit(":", 1)
    context = tls.ssl_context()
    with (
        socket.create_connection((host, int(port)), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=host) as connection,
    ):
        served = connection.getpeercert(binary_form=True)
    assert served is not None
    return served


def test_certificates_rotated_in_place_are_served_to_new_connections(stack: LocalStack) -> None:
    assert stack.tls is not None
    tls = stack.tls
    ledger = stack.ledger()
    before = _served_certificate(ledger.url, tls)
    cert, key = tls.issue_server().write(tls.directory / "next", "server")
    os.replace(cert, tls.server_cert_file)
    os.replace(key, tls.server_key_file)
    after = wait_until(
        lambda: (served := _served_certificate(ledger.url, tls)) != before and served,
        30,
        "a new connection to be served the new certificate",
    )
    assert after == ssl.PEM_cert_to_DER_cert(tls.server_cert_file.read_text())
    assert ledger.client.total()["count"] == 0


def test_the_cli_reads_the_total_over_mutual_tls(stack: LocalStack) -> None:
    assert stack.tls is not None
    ledger = stack.ledger()
    env = {
        **os.environ,
        "DISTSUM_TLS_CA_FILE": str(stack.tls.ca_file),
        "DISTSUM_TLS_CERT_FILE": str(stack.tls.client_cert_file),
        "DISTSUM_TLS_KEY_FILE": str(stack.tls.client_key_file),
    }
    total = subprocess.run(
        [sys.executable, "-m", "distsum.cli", "total", "--ledger-url", ledger.url],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    assert (total.returncode, total.stdout.strip()) == (0, "0"), total.stderr
