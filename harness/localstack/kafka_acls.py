"""The least each service needs from Kafka, as ACLs a secured local broker grants (issue 19): the sum
service writes events; the ledger reads them in its consumer groups and writes dead letters. Nothing
else: neither may create, alter or delete topics, and neither may do the other's part."""

from __future__ import annotations

from confluent_kafka.admin import AdminClient

# confluent_kafka.admin re-exports these without listing them in __all__, which mypy --strict rejects;
# their modules are where the classes (and their stubs) live.
from confluent_kafka.admin._acl import AclBinding, AclOperation, AclPermissionType
from confluent_kafka.admin._resource import ResourcePatternType, ResourceType

SUM_PRINCIPAL = "sum-svc"
LEDGER_PRINCIPAL = "ledger-svc"


def service_acls(topic: str, dead_letter_topic: str, ledger_group: str) -> list[AclBinding]:
    """The bindings of both services. `ledger_group` is a prefix: the ledger's group and its log probe's
    (`<group>-log-probe`) share it."""

    def allow(
        principal: str,
        kind: ResourceType,
        name: str,
        operation: AclOperation,
        pattern: ResourcePatternType = ResourcePatternType.LITERAL,
    ) -> AclBinding:
        return AclBinding(kind, name, pattern, f"User:{principal}", "*", operation, AclPermissionType.ALLOW)

    topic_ = ResourceType.TOPIC
    return [
        # Idempotent producing needs Write on the topic (no cluster-wide IdempotentWrite since Kafka 3).
        allow(SUM_PRINCIPAL, topic_, topic, AclOperation.WRITE),
        allow(SUM_PRINCIPAL, topic_, topic, AclOperation.DESCRIBE),
        allow(LEDGER_PRINCIPAL, topic_, topic, AclOperation.READ),
        allow(LEDGER_PRINCIPAL, topic_, topic, AclOperation.DESCRIBE),
        allow(
            LEDGER_PRINCIPAL,
            ResourceType.GROUP,
            ledger_group,
            AclOperation.READ,
            ResourcePatternType.PREFIXED,
        ),
        allow(LEDGER_PRINCIPAL, topic_, dead_letter_topic, AclOperation.WRITE),
        allow(LEDGER_PRINCIPAL, topic_, dead_letter_topic, AclOperation.DESCRIBE),
    ]


def grant(admin: AdminClient, bindings: list[AclBinding], timeout: float = 30) -> None:
    """Create the bindings (as a super user) and wait until the broker confirms each."""
    for future in admin.create_acls(bindings, request_timeout=timeout).values():
        future.result(timeout)
