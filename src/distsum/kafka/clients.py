"""Kafka client construction: the settings every client shares, and the producer, consumer and admin
clients built on them. Callers add only what is theirs (group, timeouts, batching)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import AdminClient

from distsum.kafka.diagnostics import KafkaDiagnostics

# Every event's producer: the broker writes each produced record once and only acknowledges it once all
# in-sync replicas have it, which is what an Add's reply promises.
IDEMPOTENT_ACKS_ALL: Mapping[str, Any] = {"enable.idempotence": True, "acks": "all"}


def client_config(
    bootstrap_servers: str,
    logger: logging.Logger | None = None,
    settings: Mapping[str, Any] | None = None,
    *,
    security: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """What every client shares, its `security` (distsum.kafka.security.client_security; none: plaintext),
    then `settings`. With a logger, librdkafka's errors become throttled JSON log lines on it; without
    one (a tool, a test), librdkafka logs as it does by default. The result may hold a password: never
    log it."""
    config: dict[str, Any] = {"bootstrap.servers": bootstrap_servers, "reconnect.backoff.max.ms": 1000}
    if logger is not None:
        config |= KafkaDiagnostics(logger).config()
    return config | dict(security or {}) | dict(settings or {})


def producer_config(
    bootstrap_servers: str,
    logger: logging.Logger | None = None,
    settings: Mapping[str, Any] | None = None,
    *,
    security: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """An idempotent, acks=all producer's configuration."""
    merged = {**IDEMPOTENT_ACKS_ALL, **(settings or {})}
    return client_config(bootstrap_servers, logger, merged, security=security)


def producer(
    bootstrap_servers: str,
    logger: logging.Logger | None = None,
    settings: Mapping[str, Any] | None = None,
    *,
    security: Mapping[str, Any] | None = None,
) -> Producer:
    return Producer(producer_config(bootstrap_servers, logger, settings, security=security))


def consumer(
    bootstrap_servers: str,
    logger: logging.Logger | None = None,
    settings: Mapping[str, Any] | None = None,
    *,
    security: Mapping[str, Any] | None = None,
) -> Consumer:
    return Consumer(client_config(bootstrap_servers, logger, settings, security=security))


def admin(
    bootstrap_servers: str,
    logger: logging.Logger | None = None,
    settings: Mapping[str, Any] | None = None,
    *,
    security: Mapping[str, Any] | None = None,
) -> AdminClient:
    return AdminClient(client_config(bootstrap_servers, logger, settings, security=security))


def retire_producer(old: Producer, logger: logging.Logger, flush_timeout: float) -> int:
    """Take a replaced producer out of service; returns how many events were left unreported.

    A producer is replaced when Kafka came back as another cluster (its data lost): librdkafka keeps the
    old cluster's partition leader epochs and ignores the new cluster's leaders as outdated, so the old
    client would never find a leader again; or after a fatal error. What it still holds fails now (purged;
    those callers are told and retry with the same request id), and its delivery reports are served, since
    they may arrive after purge() returns and an unreported event would stay pending forever."""
    try:
        old.purge()
    except KafkaException as exc:
        # Its events then fail by message.timeout.ms instead; the flush below still serves them.
        logger.error("could not purge the replaced kafka producer", extra={"error": str(exc)})
    unreported = old.flush(flush_timeout)
    if unreported:
        logger.error("events of the replaced producer left unreported", extra={"unreported": unreported})
    return int(unreported)
