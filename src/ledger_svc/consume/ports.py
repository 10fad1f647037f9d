"""What the consumer loop and the log guard need from Kafka, as Protocols, and the errors that cross
them: kafka_clients implements them over confluent-kafka, the unit tests with fakes."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

from confluent_kafka import KafkaError, Message, TopicPartition

from ledger_svc.domain.incarnation import IncarnationState


class KafkaConsumer(Protocol):
    """The calls the loop and the guard make on a confluent-kafka Consumer, which implements this as is."""

    def subscribe(
        self,
        topics: list[str],
        on_assign: RebalanceCallback,
        on_revoke: RebalanceCallback,
        on_lost: RebalanceCallback,
    ) -> None: ...

    def consume(self, num_messages: int, timeout: float) -> list[Message]: ...

    def poll(self, timeout: float) -> Message | None: ...

    def assign(self, partitions: list[TopicPartition]) -> None: ...

    def unassign(self) -> None: ...

    def pause(self, partitions: list[TopicPartition]) -> None: ...

    def resume(self, partitions: list[TopicPartition]) -> None: ...

    def seek(self, partition: TopicPartition) -> None: ...

    def commit(self, *, offsets: list[TopicPartition], asynchronous: Literal[True]) -> None: ...

    def close(self) -> None: ...


# Run by the consumer inside consume or poll, with itself and the partitions assigned, revoked or lost.
RebalanceCallback = Callable[[KafkaConsumer, list[TopicPartition]], None]


class IncarnationInspector(Protocol):
    def inspect(self, partitions: Iterable[int], keys_at: Mapping[int, int]) -> IncarnationState:
        """The log of each partition, with the key of the record at keys_at[partition] where asked.
        Raises IncarnationUnknown where Kafka cannot say."""
        ...


@dataclass(frozen=True)
class InstanceHolder:
    """The member the group coordinator lists with the ledger's group.instance.id."""

    member_id: str
    client_id: str
    host: str


class GroupMembers(Protocol):
    def holder_of_instance(self) -> InstanceHolder | None:
        """Who holds the ledger's group.instance.id now; None where Kafka lists nobody. Raises
        GroupUnknown where Kafka cannot say."""
        ...


class GroupUnknown(RuntimeError):
    """Kafka could not describe the consumer group."""


class DeadLetterSink(Protocol):
    def send(self, poison: list[tuple[Message, str]], timeout: float) -> None:
        """Publish every record and wait for all acknowledgements; raise DeadLetterFailed if any is
        missing."""
        ...

    def reconnect(self) -> None:
        """Start over with new clients, for a Kafka cluster that came back without its data."""
        ...

    def close(self, timeout: float) -> None: ...


class IncarnationUnknown(RuntimeError):
    """Kafka could not say which log it serves (unreachable, or the topic does not exist)."""


class DeadLetterFailed(RuntimeError):
    pass


class KafkaConsumerFatal(RuntimeError):
    """librdkafka reported a fatal error: this consumer will never consume again, though it still
    looks subscribed with its partitions, so nothing inside the process notices.

    The process exits rather than replacing the consumer as the rejoin watchdog does. A consumer
    fails fatally when fenced: another member joined with its group.instance.id. A replacement
    with that id would fence the other member in turn, and two ledgers would take the partitions from
    each other for as long as both run, each counting into its own store. Exiting lets the supervisor
    decide: Kubernetes restarts the pod with a growing back-off and counts the restarts, which shows a
    duplicate that keeps fencing, while an old incarnation (a pod cut off from the cluster while its
    successor started) just goes away. Nothing is lost: the store holds the offsets to resume from.

    The one fence the loop survives is a consumer's own: after a coordinator stall, a join the consumer
    had given up on can be processed late and fence the join that replaced it (KAFKA-20985). Nobody
    heartbeats for the member that join made, so the coordinator drops it within the session timeout;
    a member still listed after that is another process (consume.fences).
    """


def raise_if_fatal(error: KafkaError) -> None:
    # librdkafka reports the fatal error once, as a message with code _FATAL and the cause in its text.
    if error.code() == KafkaError._FATAL:
        raise KafkaConsumerFatal(error.str())
