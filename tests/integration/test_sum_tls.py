"""The sum service over mutual TLS: real handshakes with certificates made for the test, who may Add,
and certificates rotated in place under traffic (distsum/tls.py, sum_svc/access.py)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from distsum.clients.sum_service import SumClient
from distsum.clients.waiting import wait_until
from localstack.certificates import CertificateAuthority, LocalTls
from localstack.ports import free_port
from localstack.stack import QUICK_RECOVERY, Ledger, LocalStack, SumService
from tests.conftest import Topic
from tests.services import new_id

STRANGER = "spiffe://distsum.local/stranger"


@pytest.fixture
def stack(topic: Topic, tmp_path: Path) -> Iterator[LocalStack]:
    """Both services with mutual TLS, on the test's own topic and group."""
    env = {**QUICK_RECOVERY, "LEDGER_GROUP_ID": f"ledger-{topic.name}"}
    with contextlib.ExitStack() as resources:
        yield LocalStack(
            resources, topic.bootstrap, topic.name, tmp_path, env, tls=LocalTls(tmp_path / "tls")
        )


def refused_metric(service: SumService, reason: str) -> float:
    text = urllib.request.urlopen(service.metrics_url, timeout=5).read().decode()
    prefix = f'sum_grpc_refused_total{{reason="{reason}"}} '
    return sum(float(line.removeprefix(prefix)) for line in text.splitlines() if line.startswith(prefix))


def add_with(service: SumService, credentials: grpc.ChannelCredentials, a: int, b: int) -> int:
    with SumClient(service.target, credentials) as client:
        return client.add(new_id(), a, b, timeout=5).sum


def test_only_allowed_identities_with_a_certificate_of_the_ca_may_add(stack: LocalStack) -> None:
    assert stack.tls is not None
    ledger = stack.ledger()
    service = stack.sum_service()
    assert add_with(service, stack.tls.channel_credentials(), 2, 3) == 5

    # No certificate, or one from another CA: refused in the handshake (grpcio cannot ask for an optional
    # client certificate), so the caller sees UNAVAILABLE.
    no_certificate = grpc.ssl_channel_credentials(stack.tls.ca.cert_pem)
    other = CertificateAuthority("another CA").issue(STRANGER, uris=[STRANGER], client=True)
    other_ca = grpc.ssl_channel_credentials(stack.tls.ca.cert_pem, other.key_pem, other.cert_pem)
    for credentials in (no_certificate, other_ca):
        with pytest.raises(grpc.RpcError) as refused:
            add_with(service, credentials, 1, 1)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE

    # A certificate of the CA whose identity may not Add.
    stranger = stack.tls.channel_credentials(stack.tls.issue_client(STRANGER))
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
    audit = [line for line in _log_records(service) if line.get("msg") == "audit: call"]
    assert [(line["identity"], line["method"]) for line in audit] == [
        ("spiffe://distsum.local/harness", "/distsum.v1.SumService/Add")
    ]
    denial = [
        line for line in _log_records(service) if line.get("msg") == "call refused: identity not allowed"
    ]
    assert [line["identity"] for line in denial] == [STRANGER]


def _log_records(service: SumService) -> list[dict[str, object]]:
    lines = service.process.log_path.read_text(errors="replace").splitlines()
    return [json.loads(line) for line in lines if line.startswith("{")]


def _served_certificate(target: str, tls: LocalTls) -> bytes:
    """The certificate a new TLS connection to target is served (DER), read with Python's ssl."""
    context = ssl.create_default_context(cafile=tls.ca_file)
    context.set_alpn_protocols(["h2"])
    pair_dir = tls.directory / "probe"
    cert, key = tls.client.write(pair_dir, "probe")
    context.load_cert_chain(cert, key)
    host, port = target.rsplit(":", 1)
    with (
        socket.create_connection((host, int(port)), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as connection,
    ):
        served = connection.getpeercert(binary_form=True)
    assert served is not None
    return served


def test_certificates_rotated_in_place_are_served_without_a_failed_call(stack: LocalStack) -> None:
    """The key pair's files are replaced the way Kubernetes updates a mounted Secret (one rename) while a
    client keeps adding on one channel: no call fails, new connections get the new certificate, and
    every Add is counted once."""
    assert stack.tls is not None
    tls = stack.tls
    ledger: Ledger = stack.ledger()
    service = stack.sum_service()
    before = _served_certificate(service.target, tls)

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
        staging = tls.directory / "next"
        cert, key = tls.issue_server().write(staging, "server")
        # Both files at once, as the kubelet swaps a Secret's ..data link.
        os.replace(cert, tls.server_cert_file)
        os.replace(key, tls.server_key_file)
        after = wait_until(
            lambda: (served := _served_certificate(service.target, tls)) != before and served,
            30,
            "a new connection to be served the new certificate",
        )
        assert after == ssl.PEM_cert_to_DER_cert(tls.server_cert_file.read_text())
        count_at_rotation = len(sent)
        wait_until(lambda: len(sent) >= count_at_rotation + 20, 30, "adds after the rotation")
    finally:
        stop.set()
        adder.join(30)
    assert errors == []
    assert ledger.client.wait_count(len(sent))["total"] == str(sum(sent))
    with SumClient(service.target, tls.channel_credentials()) as fresh:
        assert fresh.add(new_id(), 2, 3).sum == 5


def test_the_cli_adds_over_mutual_tls(stack: LocalStack) -> None:
    assert stack.tls is not None
    ledger = stack.ledger()
    service = stack.sum_service()
    cert, key = stack.tls.client.write(stack.tls.directory / "cli", "client")
    added = subprocess.run(
        [sys.executable, "-m", "distsum.cli", "add", "2", "3", "--target", service.target],
        capture_output=True,
        text=True,
        check=False,
        env={
            **os.environ,
            "DISTSUM_TLS_CA_FILE": str(stack.tls.ca_file),
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
