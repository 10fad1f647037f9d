"""The fault driver: a schedule drawn from the seed, carried out one fault at a time while the clients
run, each waited out until the stack has recovered (with a deadline), and recorded.

Kinds: `sum_kill` (SIGKILL a sum service's process group, restart it on its port), `ledger_kill`
(SIGKILL the ledger's whole process group), `consumer_kill` (SIGKILL only the ledger's consumer process;
its supervisor stops the rest, and the ledger is started again as a container would be),
`broker_kill` (SIGKILL the node that leads the most partitions, restart it after a pause),
`full_volume` (fill the ledger's tmpfs volume, deliver an acknowledged event again so the ledger has
something to store, hold, free it) and `log_restart` (every node's storage
wiped under the running ledger: a Kafka log that starts again).

Pauses (SIGSTOP, then SIGCONT; processes frozen by a long GC, CPU throttling or a frozen node, which
kills alone never show): `sum_pause` (a sum service, longer than the clients' deadline, so they retry
elsewhere while its calls and produce requests are in flight), `consumer_pause` (the ledger's consumer,
longer than its 15 s Kafka session: the group moves on without it and it must rejoin) and
`broker_pause` (longer than a node's 9 s KRaft session: the controller fences it and leadership moves
while it still holds connections; the first, third, ... pause the ledger group's coordinator, whose
stall can leave a join of the consumer's own processed late, the others the node leading the most
partitions).
"""

from __future__ import annotations

import contextlib
import errno
import random
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from distsum import event_codec
from distsum.clients.waiting import wait_until
from distsum.domain import SumComputed
from distsum.kafka import clients as kafka_clients
from localstack.stack import TOPIC
from soak.clients import Clients
from soak.readback import EntryReader
from soak.stack import LEDGER_GROUP, Stack, is_tmpfs

KINDS = (
    "sum_kill",
    "ledger_kill",
    "consumer_kill",
    "broker_kill",
    "full_volume",
    "log_restart",
    "sum_pause",
    "consumer_pause",
    "broker_pause",
)
RECOVERY_TIMEOUT = 180.0
LOG_GRACE = 5.0  # error lines this long after a recovery still belong to the fault


class NotInjected(Exception):
    """This machine cannot inject the fault at all (not a failure of the stack): reported, not counted."""

    def __init__(self, target: str, reason: str) -> None:
        super().__init__(reason)
        self.target, self.reason = target, reason


@dataclass
class FaultRecord:
    kind: str
    target: str
    at_s: float  # since the load started
    recovered_after_s: float | None
    note: str = ""
    wall_start: float = 0.0
    wall_end: float = 0.0
    # False where this machine cannot inject the fault at all (reported, not counted as done).
    injected: bool = True

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        del d["wall_start"], d["wall_end"]
        return d


def schedule(counts: dict[str, int], seconds: float, rng: random.Random) -> list[tuple[float, str]]:
    """(offset in seconds, kind) for every fault, shuffled and spread evenly over `seconds` with jitter."""
    kinds = [kind for kind in KINDS for _ in range(counts.get(kind, 0))]
    rng.shuffle(kinds)
    step = seconds / max(1, len(kinds))
    return [(step * (i + rng.uniform(0.2, 0.8)), kind) for i, kind in enumerate(kinds)]


class FaultDriver:
    def __init__(  # noqa: PLR0917
        self,
        soak: Stack,
        clients: Clients,
        plan: list[tuple[float, str]],
        rng: random.Random,
        stop: threading.Event,
        say: Callable[[str], None],
    ) -> None:
        self.soak, self.clients, self.plan, self.rng, self.stop, self.say = (
            soak,
            clients,
            plan,
            rng,
            stop,
            say,
        )
        self.records: list[FaultRecord] = []
        self.pauses: list[tuple[float, float]] = []  # monotonic windows the clients were held on purpose
        self.error: BaseException | None = None
        self.finished = threading.Event()
        self._thread = threading.Thread(target=self._run, name="faults", daemon=True)
        self._reader = EntryReader(soak.ledger.client)

    def start(self) -> None:
        self._start = time.monotonic()
        self._thread.start()

    def wait_finished(self, timeout: float) -> None:
        if not self.finished.wait(timeout):
            raise RuntimeError(f"the fault driver did not finish within {timeout:.0f} s")
        if self.error is not None:
            raise RuntimeError(f"the fault driver failed: {self.error!r}") from self.error

    def _run(self) -> None:
        try:
            for offset, kind in self.plan:
                if self.stop.wait(max(0.0, self._start + offset - time.monotonic())):
                    return
                self._inject(kind)
        except BaseException as exc:  # reported by wait_finished(); the run then stops
            self.error = exc
            self.stop.set()
        finally:
            self.finished.set()
        # The processes this thread restarted die with it (PR_SET_PDEATHSIG is per thread), so it
        # lives until the run stops, after every process has been stopped.
        self.stop.wait()

    def _inject(self, kind: str) -> None:
        started, wall = time.monotonic(), time.time()
        try:
            target, note = getattr(self, f"_{kind}")()
            injected = True
        except NotInjected as why:
            target, note, injected = why.target, f"not injected: {why.reason}", False
        at = round(started - self._start, 1)
        record = FaultRecord(kind, target, at, None, note, wall, injected=injected)
        record.recovered_after_s = round(time.monotonic() - started, 2)
        record.wall_end = time.time() + LOG_GRACE
        self.records.append(record)
        self.say(
            f"fault {len(self.records)}/{len(self.plan)}: {kind} {target} recovered in "
            f"{record.recovered_after_s:.1f} s{f' ({note})' if note else ''}"
        )

    def _pause(self, low: float, high: float) -> None:
        self.stop.wait(self.rng.uniform(low, high))

    def _sum_kill(self) -> tuple[str, str]:
        service = self.rng.choice(self.soak.sums)
        service.process.kill()
        self._pause(0.2, 2.0)
        service.restart(RECOVERY_TIMEOUT)
        return service.process.name, ""

    def _ledger_kill(self) -> tuple[str, str]:
        ledger = self.soak.ledger
        ledger.process.kill()
        self._pause(0.0, 1.0)
        ledger.restart(RECOVERY_TIMEOUT)
        return "ledger process group", ""

    def _consumer_kill(self) -> tuple[str, str]:
        ledger = self.soak.ledger
        pid = ledger.consumer_pid()
        ledger.kill_consumer()
        code = ledger.process.poll()
        ledger.restart(RECOVERY_TIMEOUT)
        return f"ledger consumer pid {pid}", f"supervisor exited {code}"

    def _broker_kill(self) -> tuple[str, str]:
        cluster = self.soak.cluster
        node = cluster.busiest_leader(TOPIC)
        led = sum(1 for leader in cluster.leaders(TOPIC).values() if leader == node)
        cluster.kill(node)
        self._pause(3.0, 10.0)
        cluster.restart(node, RECOVERY_TIMEOUT)
        wait_until(lambda: cluster.fully_replicated(TOPIC), RECOVERY_TIMEOUT, "all replicas in sync", 0.2)
        return f"kafka node {node}", f"led {led} of the topic's partitions"

    def _sum_pause(self) -> tuple[str, str]:
        service = self.rng.choice(self.soak.sums)
        seconds = self.rng.uniform(6.0, 10.0)
        service.process.pause()
        try:
            self.stop.wait(seconds)
        finally:
            service.process.resume()
        service.wait_status("SERVING", RECOVERY_TIMEOUT)
        return service.process.name, f"stopped {seconds:.1f} s"

    def _consumer_pause(self) -> tuple[str, str]:
        ledger = self.soak.ledger
        seconds = self.rng.uniform(17.0, 22.0)
        pid = ledger.pause_consumer()
        try:
            self.stop.wait(seconds)
        finally:
            ledger.resume_consumer(pid)
        ledger.wait_ready(RECOVERY_TIMEOUT)
        return f"ledger consumer pid {pid}", f"stopped {seconds:.1f} s"

    def _broker_pause(self) -> tuple[str, str]:
        cluster = self.soak.cluster
        earlier = sum(1 for r in self.records if r.kind == "broker_pause")
        if earlier % 2 == 0:
            node, role = cluster.group_coordinator(LEDGER_GROUP), "coordinator of the ledger's group"
        else:
            node, role = cluster.busiest_leader(TOPIC), "leader of the most partitions"
        seconds = self.rng.uniform(12.0, 18.0)
        cluster.pause(node)
        try:
            self.stop.wait(seconds)
        finally:
            cluster.resume(node)
        wait_until(lambda: cluster.fully_replicated(TOPIC), RECOVERY_TIMEOUT, "all replicas in sync", 0.2)
        return f"kafka node {node} ({role})", f"stopped {seconds:.1f} s"

    def _full_volume(self) -> tuple[str, str]:
        ledger = self.soak.ledger
        if not is_tmpfs(self.soak.volume_note):
            raise NotInjected("ledger volume", self.soak.volume_note)
        filler = ledger.data_dir / ".soak-filler"
        blob = filler.open("wb", buffering=0)
        try:
            while True:
                blob.write(b"\0" * 2**20)
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
        finally:
            blob.close()
        # The ledger notices a full volume only when it writes; once the clients are done nothing new
        # would come. An acknowledged event delivered again (which it must not count twice) gives it a
        # batch to store, whether or not the load still runs.
        self._redeliver_one()
        degraded = False
        hold_until = time.monotonic() + self.rng.uniform(5.0, 15.0)
        while time.monotonic() < hold_until and not self.stop.is_set():
            with contextlib.suppress(OSError, ValueError):
                status, body = ledger.client.get("/readyz")
                degraded = degraded or (status == 503 and "degraded" in str(body))
            time.sleep(0.5)
        filler.unlink()
        ledger.wait_ready(RECOVERY_TIMEOUT)
        if not degraded:
            # A full volume the ledger did not notice is a fault that did not land (or a readiness
            # that does not tell): either way the run must not count it as survived.
            raise RuntimeError("the ledger's volume was full, yet /readyz never reported degraded")
        return "ledger volume", "readyz reported degraded"

    def _redeliver_one(self) -> None:
        """Write one acknowledged event to the topic again, as the sum service wrote it (as the tooling)."""
        acknowledged = sorted(self.clients.acknowledged_ids())
        if not acknowledged:
            return  # nothing acknowledged yet: the load has just begun and still brings new events
        request_id = self.rng.choice(acknowledged)
        sent = self.clients.sent[request_id]
        event = SumComputed(request_id, sent.a, sent.b, sent.a + sent.b, datetime.now(UTC))
        cluster = self.soak.cluster
        producer = kafka_clients.producer(cluster.bootstrap, security=cluster.client_security)
        producer.produce(TOPIC, key=request_id.encode(), value=event_codec.encode(event))
        if producer.flush(RECOVERY_TIMEOUT) != 0:
            raise RuntimeError("an acknowledged event could not be delivered again within the deadline")

    def _log_restart(self) -> tuple[str, str]:
        """Hold the clients, let the ledger apply every acknowledged id (an acknowledged event the old log
        held and the ledger had not read would be lost with it, by design), kill and wipe every node, let
        the clients go on (retrying while Kafka is away), and start the cluster again empty."""
        paused = time.monotonic()
        self.clients.gate.close_and_drain(60)
        try:
            ledger = self.soak.ledger
            self._reader.wait_for(self.clients.acknowledged_ids, RECOVERY_TIMEOUT)
            self.soak.cluster.kill_all()
            at_risk = self.clients.mark_unacknowledged_at_risk()
        finally:
            self.clients.gate.open.set()
            self.pauses.append((paused, time.monotonic()))
        self.soak.cluster.start_again_empty()
        deadline = time.monotonic() + RECOVERY_TIMEOUT
        for service in self.soak.sums:
            service.wait_status("SERVING", max(1.0, deadline - time.monotonic()))
        ledger.wait_ready(max(1.0, deadline - time.monotonic()))
        held = self.pauses[-1][1] - paused
        return (
            "all 3 kafka nodes",
            f"clients held {held:.1f} s for the ledger to catch up; {at_risk} ids at risk",
        )
