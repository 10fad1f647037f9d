"""From inside the cluster: both /metrics endpoints through the Service ports the ServiceMonitors name,
and duplicates sent to three sum replicas counted once."""

from __future__ import annotations

import uuid
from typing import Any

from tests.e2e.conftest import Release
from tests.e2e.kube import (
    Settings,
    port_forward,
    python_job,
    run_in_cluster,
    service_with_port,
    wait_pods_ready,
)
from tests.e2e.ledger_audit import audit_applied
from tests.e2e.tls_clients import ClientCertificate

JOB_SECONDS = 180
REPLICAS = 3
IDS = 300

METRICS_SCRIPT = """
import sys, urllib.request
for url, family in zip(sys.argv[1::2], sys.argv[2::2]):
    with urllib.request.urlopen(url, timeout=10) as reply:
        body = reply.read().decode()
    assert reply.status == 200 and f"# TYPE {family}" in body, (url, body[:500])
    print("ok", url)
"""

REPLICAS_SCRIPT = """
import sys, time, uuid
from pathlib import Path
import grpc
from distsum.tls import grpc_channel_credentials
from distsum.v1 import sum_pb2, sum_pb2_grpc

count, run_id, service, targets = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4:]
files = [Path("/etc/distsum/tls", name) for name in ("ca.crt", "tls.crt", "tls.key")]
credentials = grpc_channel_credentials(*files)
# Dialled by pod IP: the server's certificate names its Service.
options = [("grpc.ssl_target_name_override", service)]
stubs = [sum_pb2_grpc.SumServiceStub(grpc.secure_channel(t, credentials, options)) for t in targets]
retry = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}

def add(stub, request_id, a):
    for _ in range(60):
        try:
            return stub.Add(sum_pb2.AddRequest(request_id=request_id, a=a, b=1), timeout=10).sum
        except grpc.RpcError as error:
            if error.code() not in retry:
                raise
            time.sleep(0.5)
    raise SystemExit(f"{request_id} never acknowledged")

for a in range(count):
    request_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{run_id}/{a}"))
    sums = {add(stub, request_id, a) for stub in stubs}
    assert sums == {a + 1}, (request_id, sums)
print("ok", count, "ids on", len(stubs), "replicas")
"""


def port_named(core: Any, release: Release, port: int, name: str) -> str:
    """host:port of the release's Service exposing `port` under the port name `name`."""
    service = service_with_port(core, release.namespace, release.name, port).removeprefix("svc/")
    ports = {p.name: p.port for p in core.read_namespaced_service(service, release.namespace).spec.ports}
    assert ports.get(name) == port, f"{service} names its ports {ports}"
    return f"{service}.{release.namespace}.svc.cluster.local:{port}"


def test_both_metrics_endpoints_answer_from_the_monitoring_namespace(
    batch: Any, core: Any, release: Release, monitoring_namespace: str
) -> None:
    sum_metrics, ledger_metrics = (
        port_named(core, release, 9464, "metrics"),
        port_named(core, release, 9465, "metrics"),
    )
    job = python_job(
        f"metrics-{uuid.uuid4().hex[:6]}", release.sum_image, METRICS_SCRIPT,
        f"http://{sum_metrics}/metrics", "sum_grpc_requests_total",
        f"http://{ledger_metrics}/metrics", "ledger_events_applied_total",
        # What the chart's policies admit from the monitoring namespace: the Prometheus pods.
        labels={"app.kubernetes.io/name": "prometheus"},
        reach=[sum_metrics, ledger_metrics],
    )  # fmt: skip
    log = run_in_cluster(batch, core, monitoring_namespace, job, JOB_SECONDS)
    assert log.count("ok ") == 2, log


def test_duplicates_across_three_sum_replicas_count_once(
    apps: Any, batch: Any, core: Any, *, settings: Settings, release: Release, operator: ClientCertificate
) -> None:
    release.scale_sum(apps, REPLICAS)
    try:
        pods = wait_pods_ready(core, release.namespace, release.selector("sum"), REPLICAS, JOB_SECONDS)
        targets = [f"{pod.status.pod_ip}:50051" for pod in pods]
        ledger = service_with_port(core, release.namespace, release.name, 8080)
        with port_forward(settings, release.namespace, ledger, 8080) as target:
            service = service_with_port(core, release.namespace, release.name, 50051).removeprefix("svc/")
            run_id = f"{release.namespace}/replicas/{uuid.uuid4()}"
            job = python_job(
                "replicas", release.sum_image, REPLICAS_SCRIPT, str(IDS), run_id, service, *targets,
                client=operator, reach=targets,
            )  # fmt: skip
            log = run_in_cluster(batch, core, release.namespace, job, JOB_SECONDS)
            assert f"ok {IDS} ids on {REPLICAS} replicas" in log, log
            sent = {str(uuid.uuid5(uuid.NAMESPACE_URL, f"{run_id}/{a}")): a + 1 for a in range(IDS)}
            audit_applied(operator.ledger(target), sent, 120)
    finally:
        release.scale_sum(apps, 1)
    wait_pods_ready(core, release.namespace, release.selector("sum"), 1, JOB_SECONDS)
