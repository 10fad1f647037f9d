"""A steady in-cluster load through ONE gRPC channel reaches sum pods added while it runs.

kube-proxy balances connections, not calls, so a channel to the ClusterIP Service stays on one pod. A
channel to the headless Service with the round_robin policy spreads calls over every address its DNS
name resolves to, and the servers' maximum connection age (30 s in this release) makes it resolve again,
so pods that join later get calls too. Each pod's own metrics say how many Adds it served."""

from __future__ import annotations

import contextlib
import time
import uuid
from typing import Any

from distsum.clients.waiting import WaitTimeout, wait_until
from tests.e2e.conftest import MAX_CONNECTION_AGE_SECONDS, Release
from tests.e2e.kube import (
    Settings,
    finished_job_log,
    port_forward,
    python_job,
    service_with_port,
    wait_pods_ready,
)
from tests.e2e.ledger_audit import audit_applied
from tests.e2e.tls_clients import ClientCertificate
from tests.services import samples

REPLICAS = 3
RATE = 25  # Adds per second, one at a time
LOAD_SECONDS = 210
# Every pod serves its share within this long of all being ready: a connection lives at most the age
# (+10 % jitter, + the grace of a call in flight), then the channel's DNS resolution may wait up to
# 30 s (gRPC's minimum between resolutions) before it sees the new pods.
SPREAD_SECONDS = MAX_CONNECTION_AGE_SECONDS * 1.1 + 6 + 30 + 30
WINDOW_SECONDS = 20  # the shares are measured over the last this many seconds
MIN_SHARE = 0.2
ADD = "/distsum.v1.SumService/Add"

LOAD_SCRIPT = """
import sys, time, uuid
from pathlib import Path
import grpc
from distsum.tls import grpc_channel_credentials
from distsum.v1 import sum_pb2, sum_pb2_grpc

target, run_id, rate, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
files = [Path("/etc/distsum/tls", name) for name in ("ca.crt", "tls.crt", "tls.key")]
# One channel for the whole run, spreading its calls over every address of the headless Service.
options = [("grpc.service_config", '{"loadBalancingConfig": [{"round_robin": {}}]}')]
stub = sum_pb2_grpc.SumServiceStub(grpc.secure_channel(target, grpc_channel_credentials(*files), options))
retry = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}
retried = 0
start = time.monotonic()
a = 0
while time.monotonic() - start < seconds:
    request_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{run_id}/{a}"))
    for attempt in range(60):
        try:
            assert stub.Add(sum_pb2.AddRequest(request_id=request_id, a=a, b=1), timeout=10).sum == a + 1
            break
        except grpc.RpcError as error:
            if error.code() not in retry:
                raise SystemExit(f"{request_id}: {error.code().name} {error.details()}")
            retried += 1
            time.sleep(0.2)
    else:
        raise SystemExit(f"{request_id} never acknowledged")
    a += 1
    time.sleep(max(0.0, start + a / rate - time.monotonic()))
print(f"acknowledged {a} retried {retried}")
"""


def adds_served(url: str) -> float:
    return sum(value for labels, value in samples(url, "sum_grpc_requests_total") if labels["method"] == ADD)


def test_one_channel_reaches_every_pod_after_a_scale_out(
    apps: Any, batch: Any, core: Any, *, settings: Settings, release: Release, operator: ClientCertificate
) -> None:
    service = service_with_port(core, release.namespace, release.name, 50051).removeprefix("svc/")
    target = f"dns:///{service}-headless.{release.namespace}.svc.cluster.local:50051"
    run_id = f"{release.namespace}/scale-out/{uuid.uuid4()}"
    name = f"scale-out-{uuid.uuid4().hex[:6]}"
    job = python_job(
        name, release.sum_image, LOAD_SCRIPT, target, run_id, str(RATE), str(LOAD_SECONDS),
        client=operator, reach=[f"{service}:50051"],
    )  # fmt: skip
    (first,) = wait_pods_ready(core, release.namespace, release.selector("sum"), 1, 120)
    batch.create_namespaced_job(release.namespace, job)
    try:
        with port_forward(settings, release.namespace, f"pod/{first.metadata.name}", 9464) as metrics:
            before = adds_served(f"http://{metrics}/metrics")
            wait_until(lambda: adds_served(f"http://{metrics}/metrics") > before, 120, "the load to start")
        release.scale_sum(apps, REPLICAS)
        pods = wait_pods_ready(core, release.namespace, release.selector("sum"), REPLICAS, 180)
        with contextlib.ExitStack() as forwards:
            urls = {
                pod.metadata.name: "http://{}/metrics".format(
                    forwards.enter_context(
                        port_forward(settings, release.namespace, f"pod/{pod.metadata.name}", 9464)
                    )
                )
                for pod in pods
            }
            shares = spread_within(urls, SPREAD_SECONDS)
        log = finished_job_log(batch, core, release.namespace, name, LOAD_SECONDS + 180)
    finally:
        release.scale_sum(apps, 1)
    assert all(share >= MIN_SHARE for share in shares.values()), shares
    acknowledged = int(log.split("acknowledged ")[1].split()[0])
    assert acknowledged >= RATE * LOAD_SECONDS * 0.8, log
    sent = {str(uuid.uuid5(uuid.NAMESPACE_URL, f"{run_id}/{a}")): a + 1 for a in range(acknowledged)}
    with port_forward(
        settings, release.namespace, service_with_port(core, release.namespace, release.name, 8080), 8080
    ) as ledger:
        audit_applied(operator.ledger(ledger), sent, 180)
    wait_pods_ready(core, release.namespace, release.selector("sum"), 1, 120)


def spread_within(urls: dict[str, str], timeout: float) -> dict[str, float]:
    """Each pod's share of the Adds of the last WINDOW_SECONDS, once every share reaches MIN_SHARE."""
    history: list[tuple[float, dict[str, float]]] = []

    def spread() -> dict[str, float] | None:
        now = time.monotonic()
        history.append((now, {pod: adds_served(url) for pod, url in urls.items()}))
        past = [(at, counts) for at, counts in history if now - at >= WINDOW_SECONDS]
        if not past:
            return None
        latest, earlier = history[-1][1], past[-1][1]
        served = {pod: latest[pod] - earlier[pod] for pod in urls}
        total = sum(served.values())
        shares = {pod: round(n / total, 3) for pod, n in served.items()} if total else {}
        return shares if shares and min(shares.values()) >= MIN_SHARE else None

    try:
        return wait_until(spread, timeout + WINDOW_SECONDS, "every sum pod to serve its share", 2.0)
    except WaitTimeout as exc:
        raise WaitTimeout(f"{exc}; Adds served per pod, last looks: {history[-3:]}") from exc
