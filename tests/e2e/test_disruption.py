"""Disruptions under in-cluster load: a sum pod deleted mid-stream (grace 0) while clients retry through
the Service, and `kubectl rollout restart` of both workloads. The total stays exact."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

from distsum.clients.ledger import Total
from distsum.clients.waiting import wait_until
from tests.e2e.conftest import Release
from tests.e2e.kube import (
    Settings,
    job_logs,
    port_forward,
    python_job,
    run,
    service_with_port,
    wait_job_complete,
    wait_pods_ready,
)
from tests.e2e.ledger_audit import audit_applied
from tests.e2e.tls_clients import ClientCertificate
from tests.services import sample

LOAD = 3000
CLIENTS = 16
SECONDS = 300

# Every id retried with the same operands until acknowledged, like a real client, on the statuses the API
# tells clients to retry only (CANCELLED comes from a sum pod that stops with the call in flight): any
# other answer, or a wrong sum, fails the Job (which never runs twice). It reports what it sent,
# every answer by status, its retries and when it had its last acknowledgement.
LOAD_SCRIPT = """
import collections, json, sys, threading, time, uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
import grpc
from distsum.tls import grpc_channel_credentials
from distsum.v1 import sum_pb2, sum_pb2_grpc

target, count, clients, run_id = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
files = [Path("/etc/distsum/tls", name) for name in ("ca.crt", "tls.crt", "tls.key")]
credentials = grpc_channel_credentials(*files)
retriable = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED}
# A subchannel pool of its own per channel: one connection per client, as independent clients would have
# (by default the channels of a process share one connection, so every call would reach the same pod).
options = [("grpc.use_local_subchannel_pool", 1)]
channels = [grpc.secure_channel(target, credentials, options) for _ in range(clients)]
stubs = [sum_pb2_grpc.SumServiceStub(channel) for channel in channels]
answers, lock = collections.Counter(), threading.Lock()
last_ack = [0.0]

def send(a):
    request_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{run_id}/{a}"))
    deadline = time.monotonic() + 240
    while True:
        try:
            reply = stubs[a % clients].Add(sum_pb2.AddRequest(request_id=request_id, a=a, b=1), timeout=5)
        except grpc.RpcError as error:
            with lock:
                answers[error.code().name] += 1
            if error.code() not in retriable or time.monotonic() > deadline:
                print("giving up on", request_id, error.code(), error.details(), file=sys.stderr)
                raise
            time.sleep(0.2)
            continue
        with lock:
            answers["OK"] += 1
            last_ack[0] = time.time()
        if reply.sum != a + 1:
            raise AssertionError(f"{request_id}: sum {reply.sum}, not {a + 1}")
        return reply.sum

with ThreadPoolExecutor(clients) as pool:
    total = sum(pool.map(send, range(count)))
print(json.dumps({"acknowledged": count, "total": total, "answers": answers,
                  "retries": sum(answers.values()) - answers["OK"], "last_ack": last_ack[0]}))
"""
ADD_OK = {"method": "/distsum.v1.SumService/Add", "code": "OK"}


def ledger_reading(settings: Settings, core: Any, release: Release, client: ClientCertificate) -> Total:
    """/v1/total through a fresh port-forward (the ledger pod may have been replaced since the last one)."""
    ledger = service_with_port(core, release.namespace, release.name, 8080)
    with port_forward(settings, release.namespace, ledger, 8080) as target:
        return wait_until(lambda: client.total(target), 60, "the ledger to answer", 1.0)


def adds_served(settings: Settings, namespace: str, pod: str) -> float:
    """How many Adds the sum pod has answered OK since it started (its own counter)."""
    with port_forward(settings, namespace, f"pod/{pod}", 9464) as target:
        return sample(f"http://{target}/metrics", "sum_grpc_requests_total", **ADD_OK) or 0.0


def load_while(
    settings: Settings,
    batch: Any,
    core: Any,
    release: Release,
    client: ClientCertificate,
    *,
    name: str,
    pods: list[str],
    disrupt: Callable[[dict[str, float]], list[str]],
) -> dict[str, Any]:
    """Run the load Job against the sum Service (served by `pods`), call `disrupt` with the Adds each pod
    has served of this run once a third is counted, and check that the ledger counts exactly what the Job
    acknowledged. `disrupt` returns the sum pods it takes away: each must have served Adds of this run
    before it went (the disruption hit the traffic). Returns the Job's report."""
    before = ledger_reading(settings, core, release, client)
    served_before = {pod: adds_served(settings, release.namespace, pod) for pod in pods}
    target = service_with_port(core, release.namespace, release.name, 50051).removeprefix("svc/")
    run_id = f"{release.namespace}/{name}"
    job = python_job(
        name,
        release.sum_image,
        LOAD_SCRIPT,
        f"{target}:50051",
        str(LOAD),
        str(CLIENTS),
        run_id,
        reach=[f"{target}:50051"],
        client=client,
    )
    batch.create_namespaced_job(release.namespace, job)
    third = before["count"] + LOAD // 3

    def a_third() -> Total | None:
        body = ledger_reading(settings, core, release, client)
        return body if body["count"] >= third else None

    at_disruption = wait_until(a_third, SECONDS, "a third counted", 0.5)
    served = {pod: adds_served(settings, release.namespace, pod) - served_before[pod] for pod in pods}
    disrupted = disrupt(served)
    disrupted_at = time.time()
    assert at_disruption["count"] < before["count"] + LOAD, "the load ended before the disruption"
    wait_job_complete(batch, core, release.namespace, name, SECONDS)
    logs = job_logs(core, release.namespace, name)
    reported = [line for line in logs.splitlines() if line.startswith('{"acknowledged"')]
    assert len(reported) == 1, logs
    report: dict[str, Any] = json.loads(reported[0])
    total = sum(a + 1 for a in range(LOAD))
    assert (report["acknowledged"], report["total"]) == (LOAD, total), logs
    assert set(report["answers"]) <= {"OK", "UNAVAILABLE", "DEADLINE_EXCEEDED", "CANCELLED"}, logs
    assert report["last_ack"] > disrupted_at, "no call was acknowledged after the disruption"
    assert disrupted and all(served[pod] > 0 for pod in disrupted), (
        f"a disrupted pod served no Add of this run before it went: {served}"
    )
    sent = {str(uuid.uuid5(uuid.NAMESPACE_URL, f"{run_id}/{a}")): a + 1 for a in range(LOAD)}
    ledger = service_with_port(core, release.namespace, release.name, 8080)
    with port_forward(settings, release.namespace, ledger, 8080) as ledger_target:
        wait_until(lambda: client.total(ledger_target), 60, "the ledger to answer", 1.0)
        audit_applied(client.ledger(ledger_target), sent, SECONDS)
    print(f"{name}: {report['answers']}, {report['retries']} retries; Adds served before: {served}")
    return report


def test_a_sum_pod_deleted_mid_stream_while_clients_retry(
    apps: Any, batch: Any, core: Any, *, settings: Settings, release: Release, operator: ClientCertificate
) -> None:
    release.scale_sum(apps, 2)
    try:
        pods = wait_pods_ready(core, release.namespace, release.selector("sum"), 2, SECONDS)

        def delete_the_busiest(served: dict[str, float]) -> list[str]:
            busiest = max(served, key=lambda pod: served[pod])
            core.delete_namespaced_pod(busiest, release.namespace, grace_period_seconds=0)
            return [busiest]

        report = load_while(
            settings,
            batch,
            core,
            release,
            operator,
            name="load-sum-deleted",
            pods=[p.metadata.name for p in pods],
            disrupt=delete_the_busiest,
        )
        # No retry is required: asked for grace 0, the kubelet still gives the container 2 s, which the sum
        # service spends draining its calls, and clients reconnect on their own. The evidence that the
        # deletion hit the traffic is that the deleted pod had served Adds of this run (load_while).
        print(f"clients retried {report['retries']} times")
    finally:
        release.scale_sum(apps, 1)
    wait_pods_ready(core, release.namespace, release.selector("sum"), 1, SECONDS)


def test_rollout_restart_of_both_workloads(
    apps: Any, batch: Any, core: Any, *, settings: Settings, release: Release, operator: ClientCertificate
) -> None:
    kubectl = [settings.kubectl, "--context", settings.context, "-n", release.namespace]
    workloads = [
        *(f"deployment/{d.metadata.name}" for d in apps.list_namespaced_deployment(
            release.namespace, label_selector=release.selector("sum")).items),
        *(f"statefulset/{s.metadata.name}" for s in apps.list_namespaced_stateful_set(
            release.namespace, label_selector=release.selector("ledger")).items),
    ]  # fmt: skip
    assert len(workloads) == 2, workloads

    ready = wait_pods_ready(core, release.namespace, release.selector("sum"), 1, SECONDS)
    pods = [p.metadata.name for p in ready]

    def restart(_: dict[str, float]) -> list[str]:
        run(*kubectl, "rollout", "restart", *workloads)
        return pods  # every sum pod is replaced

    load_while(
        settings, batch, core, release, operator, name="load-rollout-restart", pods=pods, disrupt=restart
    )
    for workload in workloads:
        run(*kubectl, "rollout", "status", workload, f"--timeout={SECONDS}s", timeout=SECONDS + 30)
