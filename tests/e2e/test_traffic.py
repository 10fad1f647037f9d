"""Traffic through `kubectl port-forward`: the contract's answers, and an exact total under load while the
ledger pod is deleted mid-stream."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import pytest

from distsum.clients.waiting import wait_until
from tests.e2e.conftest import Release
from tests.e2e.kube import Settings, port_forward, run, service_with_port, wait_pods_ready
from tests.e2e.ledger_audit import audit_applied
from tests.e2e.tls_clients import ClientCertificate
from tests.services import new_id

ADDS = int(os.environ.get("DISTSUM_E2E_ADDS", "10000"))
CLIENTS = 32
INT64_MAX = 2**63 - 1
# What the contract lets a client retry with the same request_id.
RETRIABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}


@pytest.fixture(scope="module")
def sum_target(core: Any, settings: Settings, release: Release, operator: ClientCertificate) -> Iterator[str]:
    with port_forward(
        settings, release.namespace, service_with_port(core, release.namespace, release.name, 50051), 50051
    ) as target:
        wait_until(lambda: operator.health(target) == "SERVING", 60, "sum health SERVING", 1.0)
        yield target


def ledger_selector(release: Release) -> str:
    return f"app.kubernetes.io/instance={release.name},app.kubernetes.io/component=ledger"


def test_the_contract_answers_through_port_forward(
    core: Any, settings: Settings, release: Release, sum_target: str, operator: ClientCertificate
) -> None:
    assert operator.health(sum_target, "distsum.v1.SumService") == "SERVING"
    with operator.sum_client(sum_target) as client:
        for request_id, a, b, code in [
            ("not-a-uuid", 1, 2, grpc.StatusCode.INVALID_ARGUMENT),
            ("", 1, 2, grpc.StatusCode.INVALID_ARGUMENT),
            (new_id(), INT64_MAX, 1, grpc.StatusCode.OUT_OF_RANGE),
        ]:
            with pytest.raises(grpc.RpcError) as refused:
                client.add(request_id, a, b)
            assert refused.value.code() == code, (request_id, a, b)
        request_id = new_id()
        assert client.add(request_id, 2, 3).sum == 5
        with pytest.raises(grpc.RpcError) as conflict:
            client.add(request_id, 2, 4)
        assert conflict.value.code() == grpc.StatusCode.ALREADY_EXISTS

    with port_forward(
        settings, release.namespace, service_with_port(core, release.namespace, release.name, 8080), 8080
    ) as ledger:
        rest = operator.ledger(ledger)
        assert rest.get("/healthz")[0] == 200
        assert rest.get("/v1/entries?limit=0")[0] == 400
        assert rest.get("/v1/no-such-path")[0] == 404
        status, page = rest.get("/v1/entries?limit=5")
        assert status == 200, page
        assert isinstance(page, dict)


def test_exact_total_under_load_with_duplicates_and_the_ledger_pod_deleted(
    core: Any, settings: Settings, release: Release, sum_target: str, operator: ClientCertificate
) -> None:
    """ADDS Adds from CLIENTS threads, each retried with the same id until acknowledged; the ledger pod
    is deleted (grace 0) a third of the way in; then every id is sent again. The ledger comes back on
    its PVC, and its count, total and `total` file are exact."""
    (before_pod,) = wait_pods_ready(core, release.namespace, ledger_selector(release), 1, 60)
    requests = [(new_id(), i, 7) for i in range(ADDS)]
    acknowledged = 0
    lock = threading.Lock()

    with operator.sum_client(sum_target) as client:

        def send(request: tuple[str, int, int]) -> tuple[int, bool]:
            nonlocal acknowledged
            deadline = time.monotonic() + 120
            while True:
                try:
                    reply = client.add(*request, timeout=10)
                except grpc.RpcError as error:
                    retriable = error.code() in {
                        grpc.StatusCode.UNAVAILABLE,
                        grpc.StatusCode.DEADLINE_EXCEEDED,
                    }
                    if not retriable or time.monotonic() > deadline:
                        raise
                    continue
                with lock:
                    acknowledged += 1
                return reply.sum, reply.replayed

        with ThreadPoolExecutor(CLIENTS) as pool:
            replies = pool.map(send, requests)
            wait_until(lambda: acknowledged >= ADDS // 3, 300, "a third of the Adds acknowledged", 0.2)
            core.delete_namespaced_pod(before_pod.metadata.name, release.namespace, grace_period_seconds=0)
            first = list(replies)
        with ThreadPoolExecutor(CLIENTS) as pool:
            second = list(pool.map(send, requests))

    expected = [a + b for _, a, b in requests]
    assert [s for s, _ in first] == expected
    assert [s for s, _ in second] == expected
    assert all(replayed for _, replayed in second), "the second pass was not answered as replays"

    (after_pod,) = wait_pods_ready(core, release.namespace, ledger_selector(release), 1, 180)
    assert after_pod.metadata.uid != before_pod.metadata.uid
    sent = {request_id: a + b for request_id, a, b in requests}
    with port_forward(settings, release.namespace, f"pod/{after_pod.metadata.name}", 8080) as ledger:
        total = audit_applied(operator.ledger(ledger), sent, 300)["total"]

    def total_file() -> bool:
        text = run(
            settings.kubectl, "--context", settings.context, "-n", release.namespace, "exec",
            after_pod.metadata.name, "--", "python", "-c", "print(open('/data/total').read(), end='')",
        )  # fmt: skip
        return text.strip() == str(total)

    wait_until(total_file, 30, f"/data/total to read {total}", 0.5)
