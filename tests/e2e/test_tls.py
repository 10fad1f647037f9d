"""Mutual TLS as the chart installs it by default: who gets in with which certificate, from outside
(`kubectl port-forward`) and from a pod, and certificates rotated in place under traffic."""

from __future__ import annotations

import base64
import json
import ssl
import threading
import urllib.error
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from distsum.clients.ledger import LedgerClient, LedgerError
from distsum.clients.sum_service import SumClient
from distsum.clients.waiting import wait_until
from localstack.certificates import CertificateAuthority
from tests.e2e.conftest import Release
from tests.e2e.kube import Settings, port_forward, python_job, run_in_cluster, service_with_port
from tests.e2e.ledger_audit import audit_applied
from tests.e2e.tls_clients import ClientCertificate
from tests.services import new_id

JOB_SECONDS = 180
# The kubelet refreshes a Secret volume on its sync loop (about a minute, plus its cache's TTL).
ROTATION_SECONDS = 240

# From a pod labelled and mounted as `auditor`: reading is allowed, adding is not.
AUDITOR_SCRIPT = """
import json, sys
from pathlib import Path
import grpc
from distsum.clients.ledger import LedgerClient, LedgerError
from distsum.clients.sum_service import SumClient
from distsum.tls import client_ssl_context, grpc_channel_credentials

sum_target, ledger_url = sys.argv[1], sys.argv[2]
files = [Path("/etc/distsum/tls", name) for name in ("ca.crt", "tls.crt", "tls.key")]
with SumClient(sum_target, grpc_channel_credentials(*files)) as client:
    try:
        client.add("9b0c3f7e-1d2a-4c5b-8e6f-7a8b9c0d1e2f", 1, 1, timeout=30)
        add = "OK"
    except grpc.RpcError as error:
        add = error.code().name
total = LedgerClient(ledger_url, context=client_ssl_context(*files)).total()
print(json.dumps({"add": add, "count": total["count"]}))
"""


@pytest.fixture(scope="module")
def targets(core: Any, settings: Settings, release: Release) -> Iterator[tuple[str, str]]:
    """(sum, ledger) through `kubectl port-forward` to their Services."""
    sum_svc, ledger_svc = (service_with_port(core, release.namespace, release.name, p) for p in (50051, 8080))
    with (
        port_forward(settings, release.namespace, sum_svc, 50051) as sum_target,
        port_forward(settings, release.namespace, ledger_svc, 8080) as ledger_target,
    ):
        yield sum_target, ledger_target


def pods_of(core: Any, release: Release, component: str) -> list[Any]:
    pods: list[Any] = core.list_namespaced_pod(
        release.namespace, label_selector=release.selector(component)
    ).items
    return pods


def test_the_defaults_serve_both_apis_with_mutual_tls(apps: Any, release: Release) -> None:
    workloads = [
        *apps.list_namespaced_deployment(release.namespace, label_selector=release.selector("sum")).items,
        *apps.list_namespaced_stateful_set(
            release.namespace, label_selector=release.selector("ledger")
        ).items,
    ]
    assert len(workloads) == 2
    for workload in workloads:
        env = {e.name: e.value for e in workload.spec.template.spec.containers[0].env}
        assert (env["TLS_ENABLED"], env["TLS_CLIENT_AUTH"]) == ("true", "true"), workload.metadata.name


def test_without_a_certificate_of_the_ca_nothing_gets_in(
    targets: tuple[str, str], operator: ClientCertificate
) -> None:
    sum_target, ledger_target = targets
    ca = operator.file("ca.crt").read_bytes()
    stranger = CertificateAuthority("another CA").issue("operator", client=True)
    refused_by_sum = {
        "plaintext": None,
        "no certificate": grpc.ssl_channel_credentials(ca),
        "another CA": grpc.ssl_channel_credentials(ca, stranger.key_pem, stranger.cert_pem),
    }
    for what, credentials in refused_by_sum.items():
        with SumClient(sum_target, credentials) as client, pytest.raises(grpc.RpcError) as refused:
            client.add(new_id(), 1, 1, timeout=10)
        # The handshake fails (grpcio cannot make a client certificate optional), before any Add.
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE, what

    no_certificate = LedgerClient(
        f"https://{ledger_target}", context=ssl.create_default_context(cadata=ca.decode())
    )
    for path in ("/v1/total", "/v1/entries?limit=1"):
        status, body = no_certificate.get(path)
        assert (status, body["error"]) == (401, "unauthenticated"), (path, body)
    # The kubelet's probe presents no certificate either, and must still see the ledger ready.
    assert no_certificate.get("/readyz")[0] == 200
    other_ca = ssl.create_default_context(cadata=ca.decode())
    other_ca.load_cert_chain(*stranger.write(operator.directory / "stranger", "client"))
    with pytest.raises((ssl.SSLError, urllib.error.URLError, ConnectionError)):
        LedgerClient(f"https://{ledger_target}", context=other_ca).get("/v1/total")
    with pytest.raises((ssl.SSLError, urllib.error.URLError, ConnectionError)):
        LedgerClient(f"http://{ledger_target}").get("/v1/total")


def test_each_identity_may_do_what_the_values_allow(
    targets: tuple[str, str], operator: ClientCertificate, auditor: ClientCertificate
) -> None:
    sum_target, ledger_target = targets
    with operator.sum_client(sum_target) as client:
        assert client.add(new_id(), 20, 22, timeout=30).sum == 42
    assert operator.ledger(ledger_target).get("/v1/entries?limit=1")[0] == 200

    with auditor.sum_client(sum_target) as client, pytest.raises(grpc.RpcError) as denied:
        client.add(new_id(), 1, 1, timeout=30)
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "auditor" in str(denied.value.details())
    assert auditor.ledger(ledger_target).get("/v1/total")[0] == 200


def test_a_pod_whose_identity_may_not_add_is_refused(
    batch: Any, core: Any, release: Release, auditor: ClientCertificate
) -> None:
    sum_svc = service_with_port(core, release.namespace, release.name, 50051).removeprefix("svc/")
    ledger_svc = service_with_port(core, release.namespace, release.name, 8080).removeprefix("svc/")
    job = python_job(
        "auditor", release.sum_image, AUDITOR_SCRIPT, f"{sum_svc}:50051", f"https://{ledger_svc}:8080",
        client=auditor,
        # Labelled as a client that may add, so the policies let it reach the sum service: what refuses
        # its Add is then its certificate's identity.
        labels={"distributed-sum/client": "operator"},
        reach=[f"{sum_svc}:50051", f"{ledger_svc}:8080"],
    )  # fmt: skip
    log = run_in_cluster(batch, core, release.namespace, job, JOB_SECONDS)
    report = json.loads(log.strip().splitlines()[-1])
    assert report["add"] == "PERMISSION_DENIED", log
    assert isinstance(report["count"], int), log


def issue_again(core: Any, ca: CertificateAuthority, namespace: str, secret_name: str) -> bytes:
    """Replace the server certificate in `secret_name` by a new one with the same names and CA, as
    cert-manager renews one in place; the new certificate (DER)."""
    secret = core.read_namespaced_secret(secret_name, namespace)
    old = x509.load_pem_x509_certificate(base64.b64decode(secret.data["tls.crt"]))
    names = old.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    pair = ca.issue(
        str(old.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value),
        dns=names.get_values_for_type(x509.DNSName),
        ips=[str(ip) for ip in names.get_values_for_type(x509.IPAddress)],
        server=True,
    )
    data = {"tls.crt": pair.cert_pem, "tls.key": pair.key_pem}
    core.patch_namespaced_secret(
        secret_name, namespace, {"data": {k: base64.b64encode(v).decode() for k, v in data.items()}}
    )
    return x509.load_pem_x509_certificate(pair.cert_pem).public_bytes(Encoding.DER)


def test_certificates_rotated_in_place_keep_the_calls_flowing(
    core: Any, release: Release, targets: tuple[str, str], operator: ClientCertificate
) -> None:
    """Both server certificates are issued again into their Secrets while a client adds over one channel
    and reads over new connections: every call succeeds, new connections get the new certificates with
    no restart, and the ledger counts every Add exactly once."""
    sum_target, ledger_target = targets
    secrets = {
        s.metadata.name: s
        for s in core.list_namespaced_secret(
            release.namespace, label_selector=f"app.kubernetes.io/instance={release.name}"
        ).items
    }
    (ca_name,) = [name for name in secrets if name.endswith("-ca")]
    ca = CertificateAuthority.from_pem(
        base64.b64decode(secrets[ca_name].data["tls.crt"]), base64.b64decode(secrets[ca_name].data["tls.key"])
    )
    pods = {
        component: core.list_namespaced_pod(
            release.namespace, label_selector=release.selector(component)
        ).items
        for component in ("sum", "ledger")
    }
    failures: list[str] = []
    added: list[tuple[str, int]] = []  # (request id, sum) acknowledged
    stop = threading.Event()

    def traffic() -> None:
        with operator.sum_client(sum_target) as client:
            while not stop.is_set():
                a, request_id = len(added), new_id()
                try:
                    reply = client.add(request_id, a, 1, timeout=10)
                    operator.total(ledger_target)  # a new connection each time
                except (grpc.RpcError, OSError, LedgerError) as error:
                    failures.append(repr(error))
                    return
                if reply.sum != a + 1:
                    failures.append(f"{a} + 1 answered {reply.sum}")
                    return
                added.append((request_id, reply.sum))

    sender = threading.Thread(target=traffic)
    sender.start()
    try:
        wait_until(lambda: len(added) >= 20, 60, "Adds flowing before the rotation", 0.2)
        new = {
            "sum": issue_again(core, ca, release.namespace, f"{ca_name.removesuffix('-ca')}-sum-tls"),
            "ledger": issue_again(core, ca, release.namespace, f"{ca_name.removesuffix('-ca')}-ledger-tls"),
        }
        wait_until(
            lambda: operator.served_certificate(sum_target, "h2") == new["sum"],
            ROTATION_SECONDS, "the sum service to present its new certificate", 2.0,
        )  # fmt: skip
        wait_until(
            lambda: operator.served_certificate(ledger_target, "http/1.1") == new["ledger"],
            ROTATION_SECONDS, "the ledger to present its new certificate", 2.0,
        )  # fmt: skip
        at_rotation = len(added)
        wait_until(lambda: len(added) >= at_rotation + 20, 60, "Adds flowing after the rotation", 0.2)
    finally:
        stop.set()
        sender.join(timeout=30)
    assert not failures, failures[:5]
    audit_applied(operator.ledger(ledger_target), dict(added), 120)
    for component, was in pods.items():
        now = pods_of(core, release, component)
        assert [p.metadata.uid for p in now] == [p.metadata.uid for p in was], f"{component} restarted"
        assert [p.status.container_statuses[0].restart_count for p in now] == [
            p.status.container_statuses[0].restart_count for p in was
        ], f"{component} restarted"
