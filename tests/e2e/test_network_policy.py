"""The chart's NetworkPolicies, enforced: pods the policies admit reach the sum and ledger pods, pods they
do not admit cannot open a connection to them, from the release's namespace or from the monitoring one.

Enforced by kind's own CNI on the online path, and on the offline path (whose bridge CNI enforces nothing)
by kube-router's policy controller, which scripts/e2e/run.sh runs (k8s/kind/network-policy-enforcer.yaml).
Each verdict is a TCP connect from a pod of its own, so an admitted peer that connects shows the refusal
of the other is the policy and not a broken network."""

from __future__ import annotations

import json
import uuid
from typing import Any

from tests.e2e.conftest import Release
from tests.e2e.kube import python_job, run_in_cluster, service_with_port
from tests.e2e.tls_clients import ClientCertificate

# Connect to each host:port given until one connection opens or the deadline passes (an enforcer
# admits a new pod's address a moment after the pod starts); print {target: "open" | the last error's
# name} as JSON, and the seconds the first connection took.
PROBE = """
import json, socket, sys, time
deadline = time.monotonic() + float(sys.argv[1])
verdicts, started = {}, time.monotonic()
for target in sys.argv[2:]:
    host, port = target.rsplit(":", 1)
    while True:
        try:
            socket.create_connection((host, int(port)), timeout=3).close()
            verdicts[target] = "open"
            break
        except OSError as error:
            verdicts[target] = type(error).__name__
        if time.monotonic() > deadline:
            break
        time.sleep(0.5)
print(json.dumps({"verdicts": verdicts, "seconds": round(time.monotonic() - started, 1)}))
"""
# How long a probe keeps trying: a refused peer is refused for all of it.
PROBE_SECONDS = 15
JOB_TIMEOUT = 120


def _probe(
    batch: Any, core: Any, namespace: str, release: Release, targets: list[str], **job: Any
) -> dict[str, str]:
    name = f"netpol-{uuid.uuid4().hex[:6]}"
    spec = python_job(name, release.sum_image, PROBE, str(PROBE_SECONDS), *targets, **job)
    log = run_in_cluster(batch, core, namespace, spec, JOB_TIMEOUT)
    result = json.loads(log.strip().splitlines()[-1])
    print(f"{namespace} {job}: {result}")
    verdicts: dict[str, str] = result["verdicts"]
    return verdicts


def _targets(core: Any, release: Release, *ports: int) -> list[str]:
    """host:port of the release's Services, by their cluster DNS names (fully qualified: the probes also
    run from another namespace)."""
    names = [service_with_port(core, release.namespace, release.name, port) for port in ports]
    return [
        f"{name.removeprefix('svc/')}.{release.namespace}.svc.cluster.local:{port}"
        for name, port in zip(names, ports, strict=True)
    ]


def test_only_admitted_clients_reach_the_apis(
    batch: Any, core: Any, release: Release, operator: ClientCertificate
) -> None:
    apis = _targets(core, release, 50051, 8080)
    admitted = _probe(batch, core, release.namespace, release, apis, client=operator)
    assert admitted == dict.fromkeys(apis, "open"), f"a client the policies admit was refused: {admitted}"
    stranger = _probe(batch, core, release.namespace, release, apis)
    assert "open" not in stranger.values(), f"a pod without a client label reached the APIs: {stranger}"


def test_only_prometheus_pods_of_the_monitoring_namespace_reach_the_metrics(
    batch: Any, core: Any, release: Release, monitoring_namespace: str
) -> None:
    metrics = _targets(core, release, 9464, 9465)
    prometheus = {"app.kubernetes.io/name": "prometheus"}
    scraper = _probe(batch, core, monitoring_namespace, release, metrics, labels=prometheus)
    assert scraper == dict.fromkeys(metrics, "open"), f"Prometheus was refused: {scraper}"
    for namespace, labels in ((monitoring_namespace, None), (release.namespace, prometheus)):
        other = _probe(batch, core, namespace, release, metrics, labels=labels)
        assert "open" not in other.values(), f"{namespace} pod with labels {labels} reached metrics: {other}"
