"""The ledger's consumers as static members of their group, and who holds their group.instance.id (asked
after a fence: see consume.fences)."""

from __future__ import annotations

import logging

from confluent_kafka import Consumer, KafkaException
from confluent_kafka.admin import AdminClient

from distsum.kafka import clients as kafka_clients
from distsum.kafka.security import client_security
from distsum.settings import KafkaSettings
from ledger_svc.config import KAFKA_SESSION_TIMEOUT_SECONDS, LedgerSettings
from ledger_svc.consume.ports import GroupUnknown, InstanceHolder

log = logging.getLogger(__name__)

_REQUEST_TIMEOUT = 5.0


class StaticMembership:
    def __init__(self, config: LedgerSettings, kafka: KafkaSettings):
        self._config = config
        self._kafka = kafka
        self._admin: AdminClient | None = None  # made at the first fence: most ledgers never need one

    def new_consumer(self) -> Consumer:
        return kafka_clients.consumer(
            self._kafka.bootstrap_servers,
            log,
            {
                "group.id": self._config.group_id,
                # Static membership: a restarted ledger gets its partitions back at once, without waiting
                # out the session timeout of its previous incarnation.
                "group.instance.id": self._config.group_instance_id,
                "session.timeout.ms": int(KAFKA_SESSION_TIMEOUT_SECONDS * 1000),
                "client.id": "ledger",
                # The store, not Kafka, decides where to resume; Kafka commits are informational.
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "auto.offset.reset": "earliest",
                "isolation.level": "read_committed",
            },
            security=client_security(self._kafka),
        )

    def holder_of_instance(self) -> InstanceHolder | None:
        """The member the coordinator lists with the ledger's group.instance.id; None where it lists none."""
        if self._admin is None:
            self._admin = kafka_clients.admin(
                self._kafka.bootstrap_servers, log, security=client_security(self._kafka)
            )
        group = self._config.group_id
        try:
            described = self._admin.describe_consumer_groups([group], request_timeout=_REQUEST_TIMEOUT)
            members = described[group].result(_REQUEST_TIMEOUT).members
        except (KafkaException, TimeoutError) as exc:
            raise GroupUnknown(f"cannot describe consumer group {group!r}: {exc}") from exc
        for member in members:
            if member.group_instance_id == self._config.group_instance_id:
                return InstanceHolder(member.member_id, member.client_id, member.host)
        return None
