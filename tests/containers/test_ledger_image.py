"""The ledger image on a data volume: SIGKILLed mid-stream and replaced, it keeps the total exact."""

from __future__ import annotations

import os
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from distsum import event_codec
from distsum.clients.ledger import LedgerClient
from distsum.clients.waiting import wait_until
from distsum.domain import SumComputed
from distsum.kafka import clients as kafka_clients
from localstack.ports import free_port
from localstack.stack import QUICK_RECOVERY, wait_total_file
from tests.conftest import Topic
from tests.containers.conftest import Containers, assert_hardened
from tests.containers.docker_cli import APP_UID, LEDGER_IMAGE, Container
from tests.skips import expected_skip

EVENTS = 4000
KILL_AFTER = 400  # applied events; the rest of the stream is still to come when the ledger dies
RESEND_EVERY = 10  # every 10th event is published twice, as a retried Add would be


def produce(bootstrap: str, topic: str, events: list[SumComputed]) -> None:
    producer = kafka_clients.producer(bootstrap)
    for index, event in enumerate(events):
        for _ in range(2 if index % RESEND_EVERY == 0 else 1):
            producer.produce(topic, key=event.request_id.encode(), value=event_codec.encode(event))
            producer.poll(0)
    assert producer.flush(60) == 0


@dataclass
class LedgerContainer:
    container: Container
    client: LedgerClient


def test_ledger_container_killed_mid_stream_keeps_the_total_exact(
    topic: Topic, containers: Containers, tmp_path: Path
) -> None:
    if os.geteuid() != 0:
        expected_skip("not-root", "giving the data directory to uid 10001 (chown) needs root")
    data = tmp_path / "data"
    data.mkdir()
    os.chown(data, APP_UID, APP_UID)
    port = free_port()

    def start_ledger() -> LedgerContainer:
        container = containers.start(
            LEDGER_IMAGE,
            "--network",
            "host",
            "--volume",
            f"{data}:/data",
            "--tmpfs",
            "/tmp",
            env={
                "KAFKA_BOOTSTRAP_SERVERS": topic.bootstrap,
                "KAFKA_TOPIC": topic.name,
                "LEDGER_HTTP_HOST": "127.0.0.1",
                "LEDGER_HTTP_PORT": str(port),
                "LEDGER_GROUP_ID": f"ledger-{topic.name}",
                "LEDGER_BATCH_MAX_MESSAGES": "50",
                **QUICK_RECOVERY,
            },
        )
        ledger = LedgerContainer(
            container, LedgerClient(f"http://127.0.0.1:{port}", alive=container.assert_running)
        )
        ledger.client.wait_ready(90)
        return ledger

    seed = random.randrange(2**32)
    print(f"events drawn with seed {seed}")  # pytest shows it when a wait below times out
    rng = random.Random(seed)
    events = [
        SumComputed(str(uuid.UUID(int=rng.getrandbits(128), version=4)), a, b, a + b, datetime.now(UTC))
        for a, b in ((rng.randint(-(2**40), 2**40), rng.randint(-(2**40), 2**40)) for _ in range(EVENTS))
    ]
    first_half, second_half = events[: EVENTS // 2], events[EVENTS // 2 :]

    first = start_ledger()
    assert_hardened(first.container, "ledger_svc")
    # The API description is packaged with the code.
    status, description = first.client.get("/openapi.json")
    assert status == 200 and description["openapi"] == "3.1.0", description
    produce(topic.bootstrap, topic.name, first_half)
    wait_until(
        lambda: first.client.count() >= KILL_AFTER, 60, f"{KILL_AFTER} events applied (seed {seed})", 0.01
    )
    applied_before_kill = first.client.count()
    assert first.container.kill() == 137
    assert applied_before_kill < len(first_half), "the ledger finished before it could be killed mid-stream"

    produce(topic.bootstrap, topic.name, second_half)
    second = start_ledger()

    body = second.client.wait_count(EVENTS, 120)
    assert body["total"] == str(sum(event.sum for event in events)), f"seed {seed}"

    # The total file is replaced just after the store commit the REST API already shows.
    wait_total_file(data / "total", body["total"])
    for name in ("ledger.db", "total"):
        assert (data / name).stat().st_uid == APP_UID, name
