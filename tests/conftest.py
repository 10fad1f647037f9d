"""Shared by the integration and container tests: one Kafka broker per session, a fresh topic per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from localstack.kafka_broker import KafkaBroker, ensure_kafka_libs
from localstack.stack import Kafka, create_event_topics

PARTITIONS = 4

# tests/skips.py: a skip fails `make test` and `make e2e` unless it is an expected one; pytester runs the
# policy's own test.
pytest_plugins = ("tests.skips", "pytester")


@pytest.fixture(scope="session")
def kafka_libs() -> Path:
    return ensure_kafka_libs()


@pytest.fixture(scope="session")
def broker(kafka_libs: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    with KafkaBroker(kafka_libs, tmp_path_factory.mktemp("kafka"), partitions=PARTITIONS) as running:
        yield running


@dataclass
class Topic:
    name: str
    dead_letters: str
    bootstrap: str


def make_topic(kafka: Kafka) -> Topic:
    name = f"sums-{uuid.uuid4().hex[:8]}"
    create_event_topics(kafka, name, PARTITIONS)
    return Topic(name, f"{name}.dlq", kafka.bootstrap)


@pytest.fixture
def topic(broker: KafkaBroker) -> Topic:
    """A fresh topic per test, so tests never see each other's events."""
    return make_topic(broker)
