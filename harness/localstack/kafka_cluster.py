"""A local KRaft cluster of N combined broker+controller nodes from KafkaBroker, on free ports
and a state directory of its own: kill and restart a node, find the node that leads the most
partitions, and start the whole cluster again on wiped storage (a Kafka log that starts again). With
`tls`, every node is locked down (localstack.kafka_broker.KafkaBroker)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

from confluent_kafka import KafkaException

from localstack.certificates import KafkaTls
from localstack.kafka_acls import Grant, grant
from localstack.kafka_broker import KafkaBroker, admin_client, create_topic, new_cluster_id
from localstack.ports import free_port

READY_TIMEOUT = 120.0


class KafkaCluster:
    def __init__(
        self, libs: Path, state: Path, nodes: int = 3, heap: str = "384m", *, tls: KafkaTls | None = None
    ) -> None:
        ports = [(free_port(), free_port()) for _ in range(nodes)]
        voters = ",".join(f"{i + 1}@127.0.0.1:{controller}" for i, (_, controller) in enumerate(ports))
        self.nodes = [
            KafkaBroker(
                libs,
                state / f"kafka-{i + 1}",
                port,
                controller,
                heap=heap,
                node_id=i + 1,
                voters=voters,
                replication=nodes,
                tls=tls,
            )
            for i, (port, controller) in enumerate(ports)
        ]
        self.replication = nodes
        # Locked down, the harness's own calls go as the tooling's super user.
        self.client_security = self.nodes[0].client_security
        self._topics: list[tuple[str, int]] = []
        self._grants: list[Grant] = []
        self._lock = threading.Lock()
        self._format_all(new_cluster_id())

    @property
    def bootstrap(self) -> str:
        return ",".join(node.bootstrap for node in self.nodes)

    @property
    def is_running(self) -> bool:
        return all(node.is_running for node in self.nodes)

    def node(self, node_id: int) -> KafkaBroker:
        return self.nodes[node_id - 1]

    def _format_all(self, cluster_id: str) -> None:
        for node in self.nodes:
            node.format_cluster_id = cluster_id

    def start(self, timeout: float = READY_TIMEOUT) -> None:
        """Start every node that is not running and wait until each answers (a quorum needs a majority,
        so they start together and are waited for afterwards)."""
        for node in self.nodes:
            if not node.is_running:
                node.start()
        for node in self.nodes:
            node.wait_ready(timeout)

    def stop(self) -> None:
        """SIGKILL every node: the soak's data is thrown away, and a clean stop of 3 nodes takes ~20 s."""
        self.kill_all()

    def create_topic(self, name: str, partitions: int, timeout: float = 60) -> None:
        create_topic(
            self.bootstrap,
            name,
            partitions,
            timeout,
            replication_factor=self.replication,
            security=self.client_security,
        )
        self._topics.append((name, partitions))

    def grant(self, grants: list[Grant]) -> None:
        """Grant ACLs (a locked-down cluster); they are granted again when the cluster starts empty."""
        grant(admin_client(self.bootstrap, self.client_security), grants)
        self._grants.extend(grants)

    def leaders(self, topic: str, timeout: float = 30) -> dict[int, int]:
        """partition -> leader node id (-1 without a leader), retrying what a node just killed or
        restarted makes fail."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                admin = admin_client(self.bootstrap, self.client_security)
                meta = admin.list_topics(topic=topic, timeout=5).topics[topic]
                if meta.error is None and meta.partitions:
                    return {p: m.leader for p, m in meta.partitions.items()}
                problem: object = meta.error
            except (KafkaException, KeyError) as exc:
                problem = exc
            if time.monotonic() > deadline:
                raise RuntimeError(f"no metadata for {topic!r} within {timeout:.0f} s: {problem}")
            time.sleep(0.5)

    def busiest_leader(self, topic: str) -> int:
        """The node that leads the most partitions (the lowest id on a tie)."""
        counts = Counter(leader for leader in self.leaders(topic).values() if leader > 0)
        if not counts:
            raise RuntimeError(f"no partition of {topic!r} has a leader")
        return min(counts, key=lambda node: (-counts[node], node))

    def group_coordinator(self, group: str, timeout: float = 30) -> int:
        """The node coordinating the consumer group, retrying while it moves."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                admin = admin_client(self.bootstrap, self.client_security)
                return int(admin.describe_consumer_groups([group])[group].result(5).coordinator.id)
            except KafkaException as exc:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"no coordinator for group {group!r} within {timeout:.0f} s") from exc
            time.sleep(0.5)

    def fully_replicated(self, topic: str) -> bool:
        """Every partition has a leader and all replicas in sync."""
        try:
            admin = admin_client(self.bootstrap, self.client_security)
            meta = admin.list_topics(topic=topic, timeout=5).topics[topic]
        except (KafkaException, KeyError):
            return False
        if meta.error is not None or not meta.partitions:
            return False
        return all(
            p.leader > 0 and len(p.isrs) == self.replication and p.error is None
            for p in meta.partitions.values()
        )

    def kill_all(self) -> None:
        for node in self.nodes:
            node.kill()

    def kill(self, node_id: int) -> None:
        self.node(node_id).kill()

    def pause(self, node_id: int) -> None:
        self.node(node_id).pause()

    def resume(self, node_id: int) -> None:
        self.node(node_id).resume()

    def restart(self, node_id: int, timeout: float = READY_TIMEOUT) -> None:
        node = self.node(node_id)
        node.start()
        node.wait_ready(timeout)

    def start_again_empty(self, timeout: float = READY_TIMEOUT) -> None:
        """Kill every node, wipe its storage, format all with a new cluster id and start again with the
        same topics: every log starts again at offset 0, as after losing all of Kafka's volumes."""
        with self._lock:
            for node in self.nodes:
                node.kill()
                node.wipe()
            self._format_all(new_cluster_id())
            self.start(timeout)
            deadline = time.monotonic() + timeout
            for name, partitions in self._topics:
                create_topic(
                    self.bootstrap,
                    name,
                    partitions,
                    max(1.0, deadline - time.monotonic()),
                    replication_factor=self.replication,
                    security=self.client_security,
                )
            if self._grants:
                grant(admin_client(self.bootstrap, self.client_security), self._grants)
