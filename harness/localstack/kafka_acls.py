"""The least each service needs from Kafka (issue 19): the sum service writes events; the ledger reads
them in its consumer groups and writes dead letters. Nothing else: neither may create, alter or delete
topics, and neither may do the other's part. A secured local broker grants these, the e2e cluster's
broker too (tests/e2e/secured_kafka.py), and the chart's KafkaUsers grant the same (a chart test holds
them equal)."""

from __future__ import annotations

from dataclasses import dataclass

from confluent_kafka.admin import AdminClient

# confluent_kafka.admin re-exports these without listing them in __all__, which mypy --strict rejects;
# their modules are where the classes (and their stubs) live.
from confluent_kafka.admin._acl import AclBinding, AclOperation, AclPermissionType
from confluent_kafka.admin._resource import ResourcePatternType, ResourceType

SUM_PRINCIPAL = "sum-svc"
LEDGER_PRINCIPAL = "ledger-svc"


@dataclass(frozen=True)
class Grant:
    """One allowed operation, named as librdkafka's enums name it (plain data, so it can be handed to a
    Job in another pod as JSON)."""

    principal: str
    resource: str  # ResourceType: TOPIC, GROUP
    name: str
    pattern: str  # ResourcePatternType: LITERAL, PREFIXED
    operation: str  # AclOperation: READ, WRITE, DESCRIBE

    def binding(self) -> AclBinding:
        return AclBinding(
            ResourceType[self.resource],
            self.name,
            ResourcePatternType[self.pattern],
            f"User:{self.principal}",
            "*",
            AclOperation[self.operation],
            AclPermissionType.ALLOW,
        )


def service_grants(topic: str, dead_letter_topic: str, ledger_group: str) -> list[Grant]:
    """The grants of both services. `ledger_group` is a prefix: the ledger's group and its log probe's
    (`<group>-log-probe`) share it. Idempotent producing needs Write on the topic (no cluster-wide
    IdempotentWrite since Kafka 3)."""
    return [
        Grant(SUM_PRINCIPAL, "TOPIC", topic, "LITERAL", "WRITE"),
        Grant(SUM_PRINCIPAL, "TOPIC", topic, "LITERAL", "DESCRIBE"),
        Grant(LEDGER_PRINCIPAL, "TOPIC", topic, "LITERAL", "READ"),
        Grant(LEDGER_PRINCIPAL, "TOPIC", topic, "LITERAL", "DESCRIBE"),
        Grant(LEDGER_PRINCIPAL, "GROUP", ledger_group, "PREFIXED", "READ"),
        Grant(LEDGER_PRINCIPAL, "TOPIC", dead_letter_topic, "LITERAL", "WRITE"),
        Grant(LEDGER_PRINCIPAL, "TOPIC", dead_letter_topic, "LITERAL", "DESCRIBE"),
    ]


def grant(admin: AdminClient, grants: list[Grant], timeout: float = 30) -> None:
    """Create the grants' bindings (as a super user) and wait until the broker confirms each."""
    for future in admin.create_acls([g.binding() for g in grants], request_timeout=timeout).values():
        future.result(timeout)
