"""SIGKILL one sum service mid-stream while clients retry the same request ids on another: clients see only
retriable statuses and fail over, and the total is exact."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import grpc

from distsum.clients.waiting import wait_until
from tests.conftest import Topic
from tests.integration.conftest import LedgerFactory, SumServiceFactory
from tests.services import new_id

REQUESTS = 1500
CLIENTS = 8
RETRIABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


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
    answers: Counter[str] = Counter()
    lock = threading.Lock()

    def send_until_acknowledged(request: tuple[str, int, int]) -> int:
        """Like a real client: the same request_id, first on one replica, then on the other, retried on
        the statuses the contract calls retriable only."""
        nonlocal acknowledged
        deadline = time.monotonic() + 60
        attempt = 0
        while time.monotonic() < deadline:
            try:
                reply = clients[attempt % 2].add(*request, timeout=3)
            except grpc.RpcError as exc:
                with lock:
                    answers[exc.code().name] += 1
                assert exc.code() in RETRIABLE, f"{request[0]}: {exc.code()} {exc.details()}"
                attempt += 1
                time.sleep(0.05)  # a real client backs off
                continue
            with lock:
                acknowledged += 1
                answers["OK"] += 1
            return reply.sum
        raise AssertionError(f"{request[0]} never acknowledged")

    with ThreadPoolExecutor(CLIENTS) as pool:
        replies = pool.map(send_until_acknowledged, requests)
        wait_until(lambda: acknowledged >= REQUESTS // 3, 60, "a third of the requests acknowledged")
        doomed.process.kill()
        acknowledged_at_kill = acknowledged
        sums = list(replies)

    assert acknowledged_at_kill < REQUESTS, "the load was over before the kill"
    # Half the first attempts go to the killed replica: after the kill they fail and go to the survivor.
    assert answers["UNAVAILABLE"] + answers["DEADLINE_EXCEEDED"] > 0, f"no client failed over: {answers}"
    assert sums == [a + b for _, a, b in requests]
    body = ledger.client.wait_count(REQUESTS)
    assert body["total"] == str(sum(a + b for _, a, b in requests))
