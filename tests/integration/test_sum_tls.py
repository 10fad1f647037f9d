"""The sum service over mutual TLS: real handshakes with certificates made for the test, who may Add,
and certificates rotated in place under traffic (distsum/tls.py, sum_svc/access.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import grpc
import pytest

from distsum.clients.sum_service import SumClient
from distsum.clients.waiting import wait_until
from localstack.certificates import HARNESS_IDENTITY, CertificateAuthority
from localstack.ports import free_port
from localstack.stack import Ledger, LocalStack, SumService
from tests.integration.conftest import log_records, rotate_server_certificate
from tests.services import new_id

STRANGER = "spiffe://distsum.local/stranger"


def refused_metric(service: SumService, reason: str) -> float:
    text = urllib.request.urlopen(service.metrics_url, timeout=5).read().decode()
    prefix = f'sum_grpc_refused_total{{reason="{reason}"}} '
    return sum(float(line.removeprefix(prefix)) for line in text.splitlines() if line.startswith(prefix))


def add_with(service: SumService, credentials: grpc.ChannelCredentials, a: int, b: int) -> int:
    with SumClient(service.target, credentials) as client:
        return client.add(new_id(), a, b, timeout=5).sum


def test_only_allowed_identities_with_a_certificate_of_the_ca_may_add(tls_stack: LocalStack) -> None:
    assert tls_stack.tls is not None
    ledger = tls_stack.ledger()
    service = tls_stack.sum_service()
    assert add_with(service, tls_stack.tls.channel_credentials(), 2, 3) == 5

    # No certificate, or one from another CA: refused in the handshake (grpcio cannot ask for an optional
    # client certificate), so the caller sees UNAVAILABLE.
    no_certificate = grpc.ssl_channel_credentials(tls_stack.tls.ca.cert_pem)
    other = CertificateAuthority("another CA").issue(STRANGER, uris=[STRANGER], client=True)
    other_ca = grpc.ssl_channel_credentials(tls_stack.tls.ca.cert_pem, other.key_pem, other.cert_pem)
    for credentials in (no_certificate, other_ca):
        with pytest.raises(grpc.RpcError) as refused:
            add_with(service, credentials, 1, 1)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE

    # A certificate of the CA whose identity may not Add.
    stranger = tls_stack.tls.channel_credentials(tls_stack.tls.issue_client(STRANGER))
    with pytest.raises(grpc.RpcError) as denied:
        add_with(service, stranger, 1, 1)
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert STRANGER in str(denied.value.details())
    assert refused_metric(service, "permission_denied") == 1

    # Plaintext gets nowhere either.
    with SumClient(service.target) as plaintext, pytest.raises(grpc.RpcError) as plain:
        plaintext.add(new_id(), 1, 1, timeout=5)
    assert plain.value.code() == grpc.StatusCode.UNAVAILABLE

    assert ledger.client.wait_count(1)["total"] == "5"
    records = log_records(service.process)
    add = "/distsum.v1.SumService/Add"
    assert [(r["identity"], r["target"]) for r in records if r.get("msg") == "audit"] == [
        (HARNESS_IDENTITY, add)
    ]
    refusals = [(r["msg"], r.get("identity")) for r in records if str(r.get("msg", "")).startswith("refused")]
    assert refusals == [("refused: identity not allowed", STRANGER)]


def _host_port(target: str) -> tuple[str, int]:
    host, port = target.rsplit(":", 1)
    return host, int(port)


def test_certificates_rotated_in_place_are_served_without_a_failed_call(tls_stack: LocalStack) -> None:
    """The key pair's files are replaced the way Kubernetes updates a mounted Secret (one rename) while a
    client keeps adding on one channel: no call fails, new connections get the new certificate, and
    every Add is counted once."""
    assert tls_stack.tls is not None
    tls = tls_stack.tls
    ledger: Ledger = tls_stack.ledger()
    service = tls_stack.sum_service()

    sent: list[int] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def keep_adding() -> None:
        with service.client() as client:
            n = 0
            while not stop.is_set():
                n += 1
                try:
                    client.add(new_id(), n, 0, timeout=10)
                except grpc.RpcError as exc:
                    errors.append(exc)
                    return
                sent.append(n)

    adder = threading.Thread(target=keep_adding)
    adder.start()
    try:
        wait_until(lambda: len(sent) >= 20, 30, "adds before the rotation")
        rotate_server_certificate(tls, *_host_port(service.target))
        count_at_rotation = len(sent)
        wait_until(lambda: len(sent) >= count_at_rotation + 20, 30, "adds after the rotation")
    finally:
        stop.set()
        adder.join(30)
    assert errors == []
    assert ledger.client.wait_count(len(sent))["total"] == str(sum(sent))
    with SumClient(service.target, tls.channel_credentials()) as fresh:
        assert fresh.add(new_id(), 2, 3).sum == 5


def test_the_cli_adds_over_mutual_tls(tls_stack: LocalStack) -> None:
    assert tls_stack.tls is not None
    ledger = tls_stack.ledger()
    service = tls_stack.sum_service()
    cert, key = tls_stack.tls.client.write(tls_stack.tls.directory / "cli", "client")
    added = subprocess.run(
        [sys.executable, "-m", "distsum.cli", "add", "2", "3", "--target", service.target],
        capture_output=True,
        text=True,
        check=False,
        env={
            **os.environ,
            "DISTSUM_TLS_CA_FILE": str(tls_stack.tls.ca_file),
            "DISTSUM_TLS_CERT_FILE": str(cert),
            "DISTSUM_TLS_KEY_FILE": str(key),
        },
    )
    assert (added.returncode, added.stdout.strip()) == (0, "5"), added.stderr
    assert ledger.client.wait_count(1)["total"] == "5"


def test_make_run_with_tls_serves_mutual_tls_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    """`DISTSUM_TLS=1 make run` (python -m localstack.run) on free ports: the CLI adds with the client
    settings it prints, and SIGINT stops everything with exit status 0."""
    ports = {
        name: str(free_port())
        for name in (
            "DISTSUM_KAFKA_PORT",
            "DISTSUM_KAFKA_CONTROLLER_PORT",
            "SUM_GRPC_PORT",
            "SUM_METRICS_PORT",
            "LEDGER_HTTP_PORT",
            "LEDGER_METRICS_PORT",
        )
    }
    env = {**os.environ, **ports, "DISTSUM_TLS": "1", "DISTSUM_STATE_DIR": str(tmp_path / "run")}
    run = subprocess.Popen(
        [sys.executable, "-m", "localstack.run"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: list[str] = []
    stdout = run.stdout
    assert stdout is not None
    reader = threading.Thread(target=lambda: output.extend(iter(stdout.readline, "")), daemon=True)
    reader.start()
    try:
        wait_until(
            lambda: any("Ctrl-C stops everything" in line for line in output), 120, "make run to be up"
        )
        (exports,) = [line.split("export ", 1)[1] for line in output if "export DISTSUM_TLS_CA_FILE" in line]
        client_env = dict(pair.split("=", 1) for pair in exports.split())
        added = subprocess.run(
            [
                sys.executable,
                "-m",
                "distsum.cli",
                "add",
                "2",
                "3",
                "--target",
                f"127.0.0.1:{ports['SUM_GRPC_PORT']}",
            ],
            env={**os.environ, **client_env},
            capture_output=True,
            text=True,
            check=False,
        )
        assert (added.returncode, added.stdout.strip()) == (0, "5"), added.stderr
        total = subprocess.run(
            [sys.executable, "-m", "distsum.cli", "total"],
            env={**os.environ, **client_env},
            capture_output=True,
            text=True,
            check=False,
        )
        assert total.returncode == 0, total.stderr
        assert "count: 0" in total.stderr or "count: 1" in total.stderr
    finally:
        run.send_signal(signal.SIGINT)
        code = run.wait(60)
        reader.join(10)
    assert code == 0, "".join(output[-30:])
    assert output[-1].strip() == "==> stopped"
