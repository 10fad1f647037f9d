"""SIGKILL one sum service while clients retry the same request ids on another: exact total."""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import grpc

from distsum.clients.waiting import wait_until
from tests.conftest import Topic
from tests.integration.conftest import LedgerFactory, SumServiceFactory
from tests.services import new_id

REQUESTS = 1500
CLIENTS = 8


def test_sigkill_sum_service_while_clients_retry_elsewhere(
    topic: Topic, start_sum_service: SumServiceFactory, start_ledger: LedgerFactory
) -> None:
    ledger = start_ledger(topic)
    doomed, survivor = start_sum_service(topic, "sum-doomed"), start_sum_service(topic, "sum-survivor")
    clients = [doomed.client(), survivor.client()]
    rng = random.Random(7)
    requests = [
        (new_id(), rng.randint(-(10**12), 10**12), rng.randint(-(10**12), 10**12)) for _ in range(REQUESTS)
    ]
    acknowledged = 0
    lock = threading.Lock()

    def send_until_acknowledged(request: tuple[str, int, int]) -> int:
        """Like a real client: the same request_id, first on one replica, then on the other."""
        nonlocal acknowledged
        deadline = time.monotonic() + 60
        attempt = 0
        while time.monotonic() < deadline:
            try:
                reply = clients[attempt % 2].add(*request, timeout=3)
            except grpc.RpcError:
                attempt += 1
                continue
            with lock:
                acknowledged += 1
            return reply.sum
        raise AssertionError(f"{request[0]} never acknowledged")

    with ThreadPoolExecutor(CLIENTS) as pool:
        replies = pool.map(send_until_acknowledged, requests)
        wait_until(lambda: acknowledged >= REQUESTS // 3, 60, "a third of the requests acknowledged")
        doomed.process.kill()
        sums = list(replies)

    assert sums == [a + b for _, a, b in requests]
    body = ledger.client.wait_count(REQUESTS)
    assert body["total"] == str(sum(a + b for _, a, b in requests))
