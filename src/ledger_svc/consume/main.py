"""Entrypoint of the consumer process (started by ledger_svc.main)."""

from __future__ import annotations

import logging
import signal
import sys
import threading

from distsum import logs, settings, telemetry
from distsum.kafka.security import CredentialRotation
from ledger_svc import consumer_status
from ledger_svc.config import KAFKA_SESSION_TIMEOUT_SECONDS, LedgerSettings
from ledger_svc.consume.fences import FenceJudge
from ledger_svc.consume.kafka_clients import DeadLetterPublisher, KafkaLogInspector
from ledger_svc.consume.loop import LedgerConsumer
from ledger_svc.consume.ports import KafkaConsumerFatal
from ledger_svc.consume.static_membership import StaticMembership
from ledger_svc.consumer_status import ConsumerStatus
from ledger_svc.store.writer import LedgerWriter, StoreRefused, StoreUnwritable

log = logging.getLogger(__name__)

EXIT_STORE_REFUSED = 3
EXIT_KAFKA_FATAL = 4
EXIT_CREDENTIALS_ROTATED = 5


def _open_store(config: LedgerSettings, stop: threading.Event) -> LedgerWriter | None:
    """Wait out an unwritable volume; refuse (exit) on a store we cannot trust."""
    while not stop.is_set():
        try:
            return LedgerWriter.open_or_create(config.data_dir)
        except StoreRefused as exc:
            consumer_status.write(config.status_file, ConsumerStatus(state="refused", reason=str(exc)))
            log.critical("refusing to start: %s", exc)
            sys.exit(EXIT_STORE_REFUSED)
        except (StoreUnwritable, OSError) as exc:
            consumer_status.write(config.status_file, ConsumerStatus(state="degraded", reason=str(exc)))
            log.error("store cannot be opened yet; retrying", extra={"reason": str(exc)})
            stop.wait(config.retry_interval_seconds)
    return None


def main() -> None:
    logs.configure("ledger-consumer")
    config = settings.load(LedgerSettings)
    kafka = settings.load(settings.KafkaSettings)
    telemetry.configure_tracing("ledger")
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    rotated = threading.Event()

    def restart_for_new_credentials() -> None:
        rotated.set()
        stop.set()

    rotation = CredentialRotation(kafka, restart_for_new_credentials)

    writer = _open_store(config, stop)
    if writer is None:
        return
    rotation.start()
    try:
        dead_letters = DeadLetterPublisher(kafka, config.dead_letters_for(kafka.topic))
        membership = StaticMembership(config, kafka)
        LedgerConsumer(
            config,
            kafka.topic,
            writer,
            new_consumer=membership.new_consumer,
            inspector=KafkaLogInspector(config, kafka),
            dead_letters=dead_letters,
            fences=FenceJudge(membership, config.group_instance_id, KAFKA_SESSION_TIMEOUT_SECONDS),
        ).run(stop)
    except KafkaConsumerFatal as exc:
        log.critical(
            "kafka consumer failed fatally; exiting so that the ledger restarts",
            extra={"reason": str(exc), "group_instance_id": config.group_instance_id},
        )
        sys.exit(EXIT_KAFKA_FATAL)
    finally:
        rotation.stop()
        writer.close()
        telemetry.shutdown_tracing()
    if rotated.is_set():
        # The ledger stops as a whole and Kubernetes starts it again: its clients are made anew, with the
        # new credentials, and the store resumes from its own offsets.
        log.info("consumer stopped for new Kafka credentials")
        sys.exit(EXIT_CREDENTIALS_ROTATED)
    log.info("consumer stopped")


if __name__ == "__main__":
    main()
