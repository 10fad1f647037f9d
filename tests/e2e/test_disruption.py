"""Disruptions under in-cluster load: a sum pod deleted mid-stream (grace 0) while clients retry through
the Service, and `kubectl rollout restart` of both workloads. The total stays exact."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from distsum.clients.ledger import Total
from distsum.clients.waiting import wait_until
from tests.e2e.conftest import Release
from tests.e2e.kube import (
    Settings,
    port_forward,
    python_job,
    run,
    service_with_port,
    wait_job_complete,
    wait_pods_ready,
)
from tests.e2e.test_traffic import ledger_total

LOAD = 3000
CLIENTS = 16
SECONDS = 300

# Every id retried with the same operands until acknowledged, like a real client; reports what it sent.
# The ids derive from the run's id and the operand, so a container the Job restarts after an error sends
# the same ids again (each still counted once) rather than new ones the test never sent.
LOAD_SCRIPT = """
import sys, time, uuid
from concurrent.futures import ThreadPoolExecutor
import grpc
from distsum.v1 import sum_pb2, sum_pb2_grpc

target, count, clients, run_id = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
retry = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}
stubs = [sum_pb2_grpc.SumServiceStub(grpc.insecure_channel(target)) for _ in range(clients)]

def send(a):
    request_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{run_id}/{a}"))
    deadline = time.monotonic() + 240
    while True:
        try:
            return stubs[a % clients].Add(sum_pb2.AddRequest(request_id=request_id, a=a, b=1), timeout=5).sum
        except grpc.RpcError as error:
            if error.code() not in retry or time.monotonic() > deadline:
                print("giving up on", request_id, error.code(), error.details(), file=sys.stderr)
                raise
            time.sleep(0.2)

with ThreadPoolExecutor(clients) as pool:
    sums = list(pool.map(send, range(count)))
assert sums == [a + 1 for a in range(count)]
print("acknowledged", count, "total", sum(sums))
"""


def ledger_reading(settings: Settings, core: Any, release: Release) -> Total:
    """/v1/total through a fresh port-forward (the ledger pod may have been replaced since the last one)."""
    ledger = service_with_port(core, release.namespace, release.name, 8080)
    with port_forward(settings, release.namespace, ledger, 8080) as target:
        wait_until(lambda: ledger_total(target), 60, "the ledger to answer", 1.0)
        return ledger_total(target)


def load_while(
    settings: Settings, batch: Any, core: Any, release: Release, *, name: str, disrupt: Callable[[], None]
) -> None:
    """Run the load Job against the sum Service, call `disrupt` once a third is counted, and check that
    the ledger counts exactly what the Job acknowledged."""
    before = ledger_reading(settings, core, release)
    target = service_with_port(core, release.namespace, release.name, 50051).removeprefix("svc/")
    run_id = f"{release.namespace}/{name}"
    job = python_job(name, release.sum_image, LOAD_SCRIPT, f"{target}:50051", str(LOAD), str(CLIENTS), run_id)
    batch.create_namespaced_job(release.namespace, job)
    third = before["count"] + LOAD // 3

    def a_third() -> Total | None:
        body = ledger_reading(settings, core, release)
        return body if body["count"] >= third else None

    at_disruption = wait_until(a_third, SECONDS, "a third counted", 0.5)
    disrupt()
    assert at_disruption["count"] < before["count"] + LOAD, "the load ended before the disruption"
    wait_job_complete(batch, release.namespace, name, SECONDS)
    pods = core.list_namespaced_pod(release.namespace, label_selector=f"job-name={name}").items
    logs = "".join(
        core.read_namespaced_pod_log(p.metadata.name, release.namespace)
        for p in pods
        if p.status.phase == "Succeeded"
    )
    total = sum(a + 1 for a in range(LOAD))
    assert f"acknowledged {LOAD} total {total}" in logs, logs
    count, expected = before["count"] + LOAD, int(before["total"]) + total

    def counted() -> Total | None:
        body = ledger_reading(settings, core, release)
        return body if body["count"] >= count else None

    body = wait_until(counted, SECONDS, f"ledger count {count}", 2.0)
    assert (body["count"], body["total"]) == (count, str(expected))


def test_a_sum_pod_deleted_mid_stream_while_clients_retry(
    apps: Any, batch: Any, core: Any, settings: Settings, release: Release
) -> None:
    release.scale_sum(apps, 2)
    try:
        pods = wait_pods_ready(core, release.namespace, release.selector("sum"), 2, SECONDS)

        def delete_one() -> None:
            core.delete_namespaced_pod(pods[0].metadata.name, release.namespace, grace_period_seconds=0)

        load_while(settings, batch, core, release, name="load-sum-deleted", disrupt=delete_one)
    finally:
        release.scale_sum(apps, 1)
    wait_pods_ready(core, release.namespace, release.selector("sum"), 1, SECONDS)


def test_rollout_restart_of_both_workloads(
    apps: Any, batch: Any, core: Any, settings: Settings, release: Release
) -> None:
    kubectl = [settings.kubectl, "--context", settings.context, "-n", release.namespace]
    workloads = [
        *(f"deployment/{d.metadata.name}" for d in apps.list_namespaced_deployment(
            release.namespace, label_selector=release.selector("sum")).items),
        *(f"statefulset/{s.metadata.name}" for s in apps.list_namespaced_stateful_set(
            release.namespace, label_selector=release.selector("ledger")).items),
    ]  # fmt: skip
    assert len(workloads) == 2, workloads

    def restart() -> None:
        run(*kubectl, "rollout", "restart", *workloads)

    load_while(settings, batch, core, release, name="load-rollout-restart", disrupt=restart)
    for workload in workloads:
        run(*kubectl, "rollout", "status", workload, f"--timeout={SECONDS}s", timeout=SECONDS + 30)
