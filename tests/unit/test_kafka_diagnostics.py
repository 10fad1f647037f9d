"""Kafka client errors reach the JSON logs once per kind and interval, never as a flood."""

from __future__ import annotations

import logging

import pytest
from confluent_kafka import KafkaError

from distsum.kafka.diagnostics import KafkaDiagnostics
from tests.unit.conftest import FakeClock


def client_log(clock: FakeClock, interval: float = 60.0) -> KafkaDiagnostics:
    return KafkaDiagnostics(logging.getLogger("test.kafka"), interval, clock)


def records(caplog: pytest.LogCaptureFixture) -> list[tuple[str, int]]:
    return [(r.__dict__["kafka_error"], r.__dict__["repeats_not_logged"]) for r in caplog.records]


def test_repeats_within_the_interval_are_counted_not_logged(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    diagnostics = client_log(clock)
    with caplog.at_level(logging.WARNING, "test.kafka"):
        for _ in range(500):
            diagnostics.on_error(KafkaError(KafkaError._TRANSPORT, "connect refused"))
            clock.now += 0.05
        clock.now += 60
        diagnostics.on_error(KafkaError(KafkaError._TRANSPORT, "connect refused"))

    assert records(caplog) == [("_TRANSPORT", 0), ("_TRANSPORT", 499)]


def test_each_kind_of_error_is_logged_on_its_own(clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    diagnostics = client_log(clock)
    with caplog.at_level(logging.WARNING, "test.kafka"):
        diagnostics.on_error(KafkaError(KafkaError._TRANSPORT, "connect refused"))
        diagnostics.on_error(KafkaError(KafkaError._ALL_BROKERS_DOWN, "1/1 brokers are down"))
        diagnostics.on_error(KafkaError(KafkaError._TRANSPORT, "connect refused"))

    assert records(caplog) == [("_TRANSPORT", 0), ("_ALL_BROKERS_DOWN", 0)]
    assert caplog.records[1].__dict__["detail"] == "1/1 brokers are down"


def test_fatal_errors_are_logged_as_errors(clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, "test.kafka"):
        client_log(clock).on_error(KafkaError(KafkaError._FENCED, "fenced", fatal=True))

    assert caplog.records[0].levelno == logging.ERROR


def test_librdkafka_itself_is_quiet_unless_debugging(clock: FakeClock) -> None:
    logger = logging.getLogger("test.kafka.level")
    diagnostics = KafkaDiagnostics(logger, 60.0, clock)
    logger.setLevel(logging.INFO)
    assert diagnostics.config()["log_level"] == 2
    logger.setLevel(logging.DEBUG)
    assert diagnostics.config()["log_level"] == 7
    assert diagnostics.config()["error_cb"] == diagnostics.on_error
