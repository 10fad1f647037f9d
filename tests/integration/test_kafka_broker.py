"""The local Kafka tooling against a real broker (jars from tools/kafka/fetch-kafka.sh)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, Message

from distsum.kafka import clients as kafka_clients
from localstack.kafka_broker import KafkaBroker, create_topic, ensure_kafka_libs


@pytest.fixture(scope="module")
def libs_dir() -> Path:
    return ensure_kafka_libs()


@pytest.fixture
def new_broker(libs_dir: Path, tmp_path: Path) -> Iterator[KafkaBroker]:
    """A broker of its own (not conftest's shared one): these tests stop and kill it."""
    b = KafkaBroker(libs_dir, tmp_path / "kafka", partitions=2)
    try:
        yield b
    finally:
        b.kill()


def produce(bootstrap: str, topic: str, key: bytes, value: bytes) -> None:
    producer = kafka_clients.producer(bootstrap)
    errors: list[KafkaError | None] = []

    def on_delivery(err: KafkaError | None, _msg: Message) -> None:
        errors.append(err)

    producer.produce(topic, value=value, key=key, on_delivery=on_delivery)
    assert producer.flush(30) == 0, "message not delivered within 30 s"
    assert errors == [None]


def consume_one(bootstrap: str, topic: str, timeout: float = 30) -> Message:
    # A fresh group with no committed offsets reads the topic from the start.
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"test-{uuid.uuid4()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            msg = consumer.poll(min(1.0, remaining))
            if msg is None:
                continue
            assert msg.error() is None, msg.error()
            return msg
        raise AssertionError(f"no message on {topic!r} within {timeout} s")
    finally:
        consumer.close()


def test_data_survives_a_clean_restart(new_broker: KafkaBroker) -> None:
    broker = new_broker
    ports = (broker.port, broker.controller_port)
    broker.start()
    broker.wait_ready()
    assert broker.is_running
    assert broker.bootstrap == f"127.0.0.1:{broker.port}"

    create_topic(broker.bootstrap, "ledger", 3)
    create_topic(broker.bootstrap, "ledger", 3)  # already exists: not an error
    produce(broker.bootstrap, "ledger", b"k1", b"hello")
    assert consume_one(broker.bootstrap, "ledger").value() == b"hello"

    broker.stop()
    assert not broker.is_running

    broker.start()
    broker.wait_ready()
    assert (broker.port, broker.controller_port) == ports
    msg = consume_one(broker.bootstrap, "ledger")
    assert (msg.key(), msg.value()) == (b"k1", b"hello")

    broker.stop()
    log = (broker.data_dir / "broker.log").read_text()
    assert "Kafka Server started" in log
    # The log4j2 config must be the one in data_dir: console only, no log files.
    assert not any((broker.data_dir / "logs").iterdir())


def test_context_manager_and_crash_recovery(libs_dir: Path, tmp_path: Path) -> None:
    with KafkaBroker(libs_dir, tmp_path / "kafka") as broker:
        create_topic(broker.bootstrap, "t", 4)
        produce(broker.bootstrap, "t", b"k", b"before the crash")
        broker.kill()
        assert not broker.is_running
        broker.start()
        broker.wait_ready()
        assert consume_one(broker.bootstrap, "t").value() == b"before the crash"
    assert not broker.is_running


def test_wait_ready_reports_a_broker_that_exits(libs_dir: Path, tmp_path: Path) -> None:
    # Holding the broker's port makes the real broker fail at bind and exit.
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        broker = KafkaBroker(libs_dir, tmp_path / "kafka", port=squatter.getsockname()[1])
        broker.start()
        try:
            with pytest.raises(RuntimeError, match="exited with code") as info:
                broker.wait_ready(60)
        finally:
            broker.kill()
    assert "Address already in use" in str(info.value)


def test_another_broker_on_the_port_is_not_taken_for_ours(
    libs_dir: Path, broker: KafkaBroker, tmp_path: Path
) -> None:
    ours = KafkaBroker(libs_dir, tmp_path / "ours", port=broker.port)
    ours.start()
    try:
        # The session broker answers on the port, but with another cluster id: ours fails to bind and exits.
        with pytest.raises(RuntimeError, match="exited"):
            ours.wait_ready(60)
    finally:
        ours.kill()


def test_make_run_refuses_a_port_in_use_naming_its_variable(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        env = {**os.environ, "DISTSUM_STATE_DIR": str(tmp_path), "LEDGER_HTTP_PORT": str(port)}
        started = time.monotonic()
        run = subprocess.run(
            [sys.executable, "-m", "localstack.run"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert run.returncode != 0
    assert f"port {port} is already in use" in run.stderr
    assert "LEDGER_HTTP_PORT" in run.stderr
    assert time.monotonic() - started < 30, "refused only after starting things"
    assert not (tmp_path / "kafka").exists(), "nothing may start before the ports are checked"
