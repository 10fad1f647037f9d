"""The soak's clients: threads sending `Add`s with client-chosen ids as docs/api.md tells users to.

Each new request gets a fresh id (from the seed) and operands, and is retried on `UNAVAILABLE` and
`DEADLINE_EXCEEDED` with the same id and operands, on either sum service, until acknowledged or until
its budget runs out (then its outcome stays unknown). Some requests are sent again on purpose
(duplicates, in another spelling of the same UUID), and some acknowledged ids are reused with other
operands (conflicts, which must never be counted). What each client learns goes into `sent`, which
the checker judges the ledger against.
"""

from __future__ import annotations

import itertools
import random
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import grpc

from distsum.v1 import sum_pb2, sum_pb2_grpc
from soak.checker import Sent, answer_allowed

RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
# Reconnect fast to a restarted sum service (gRPC's default backoff grows to 2 minutes).
CHANNEL_OPTIONS = [("grpc.initial_reconnect_backoff_ms", 100), ("grpc.max_reconnect_backoff_ms", 1000)]
OPERAND = 10**12


@dataclass(frozen=True)
class LoadSettings:
    clients: int
    requests: int
    seconds: float  # the load is paced to spread the new requests over this long
    duplicate_share: float
    conflict_share: float
    attempt_timeout: float = 3.0
    give_up_after: float = 120.0


def spelling(canonical: str, rng: random.Random) -> str:
    """Another RFC 4122 text form of the same UUID (the service must treat them all as one request)."""
    u = uuid.UUID(canonical)
    return rng.choice([canonical, canonical.upper(), "{" + canonical + "}", u.hex, u.urn])


@dataclass
class Gate:
    """Lets the fault driver hold every client between attempts and wait until none is mid-call."""

    open: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _busy: int = 0
    paused_seconds: float = 0.0

    def __post_init__(self) -> None:
        self.open.set()

    def enter(self, stop: threading.Event) -> float:
        """Wait until open (or stopped), then count this caller as mid-call; returns seconds waited."""
        started = time.monotonic()
        while True:
            while not self.open.wait(0.2):
                if stop.is_set():
                    break
            with self._lock:
                if self.open.is_set() or stop.is_set():
                    self._busy += 1
                    return time.monotonic() - started

    def leave(self) -> None:
        with self._lock:
            self._busy -= 1

    def close_and_drain(self, timeout: float) -> None:
        self.open.clear()
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                if self._busy == 0:
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"clients still mid-call {timeout:.0f} s after the gate closed")
            time.sleep(0.05)


class Clients:
    def __init__(self, targets: list[str], load: LoadSettings, seed: int, stop: threading.Event) -> None:
        self.targets, self.load, self.seed, self.stop = targets, load, seed, stop
        self.gate = Gate()
        self.sent: dict[str, Sent] = {}
        self.codes: Counter[str] = Counter()  # every attempt's status
        self.counts: Counter[str] = Counter()  # new, duplicate, conflict, and their outcomes
        self.ack_times: list[float] = []
        self.disallowed: list[str] = []  # answers the contract does not allow, as "kind id: code"
        self.longest_wait_for_ack = 0.0
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self.done = threading.Event()

    @property
    def acknowledged(self) -> int:
        with self._lock:
            return sum(1 for s in self.sent.values() if s.acknowledged)

    def acknowledged_ids(self) -> set[str]:
        with self._lock:
            return {rid for rid, s in self.sent.items() if s.acknowledged}

    def mark_unacknowledged_at_risk(self) -> int:
        with self._lock:
            risky = [s for s in self.sent.values() if not s.acknowledged]
            for s in risky:
                s.at_risk = True
            return len(risky)

    def start(self) -> None:
        per_client = [self.load.requests // self.load.clients] * self.load.clients
        for i in range(self.load.requests % self.load.clients):
            per_client[i] += 1
        start = time.monotonic()
        for i, n in enumerate(per_client):
            thread = threading.Thread(
                target=self._client, args=(i, n, start), name=f"client-{i}", daemon=True
            )
            self._threads.append(thread)
            thread.start()
        threading.Thread(target=self._join, name="clients-join", daemon=True).start()

    def _join(self) -> None:
        for thread in self._threads:
            thread.join()
        self.done.set()

    def _client(self, index: int, requests: int, start: float) -> None:
        rng = random.Random(f"{self.seed}-client-{index}")
        stubs = [
            sum_pb2_grpc.SumServiceStub(grpc.insecure_channel(t, options=CHANNEL_OPTIONS))
            for t in self.targets
        ]
        interval = self.load.seconds / max(1, requests)
        mine: list[str] = []
        acked: list[str] = []
        for k in range(requests):
            if self.stop.is_set():
                return
            delay = start + k * interval - time.monotonic()
            if delay > 0 and self.stop.wait(delay):
                return
            rid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            a, b = rng.randint(-OPERAND, OPERAND), rng.randint(-OPERAND, OPERAND)
            with self._lock:
                self.sent[rid] = Sent(a, b)
            mine.append(rid)
            if self._send("new", stubs, rng, rid, rid, a, b) == "OK":
                acked.append(rid)
            if rng.random() < self.load.duplicate_share:
                again = rng.choice(mine)
                s = self.sent[again]
                if self._send("duplicate", stubs, rng, again, spelling(again, rng), s.a, s.b) == "OK":
                    acked.append(again)
            if acked and rng.random() < self.load.conflict_share:
                reused = rng.choice(acked)
                s = self.sent[reused]
                other = (s.a + rng.randint(1, 1000), s.b)
                with self._lock:
                    s.conflicts.add(other)
                self._send("conflict", stubs, rng, reused, spelling(reused, rng), *other)

    def _send(  # noqa: PLR0917 - one request's fields, called from one place
        self,
        kind: str,
        stubs: list[sum_pb2_grpc.SumServiceStub],
        rng: random.Random,
        canonical: str,
        request_id: str,
        a: int,
        b: int,
    ) -> str:
        """Send until acknowledged, refused, or out of budget; returns the last status name."""
        first = time.monotonic()
        deadline = first + self.load.give_up_after
        target = rng.randrange(len(stubs))
        backoff = 0.05
        code = "NOT_SENT"
        attempts = 0
        while not self.stop.is_set():
            paused = self.gate.enter(self.stop)
            deadline += paused
            first += paused
            try:
                reply = stubs[target].Add(
                    sum_pb2.AddRequest(request_id=request_id, a=a, b=b), timeout=self.load.attempt_timeout
                )
                code = "OK" if reply.sum == a + b else "WRONG_SUM"
                replayed = reply.replayed
            except grpc.RpcError as exc:
                code, replayed = exc.code().name, False
            finally:
                self.gate.leave()
            attempts += 1
            judged = "REPLAYED" if code == "OK" and replayed else code
            with self._lock:
                self.codes[code] += 1
                sent = self.sent[canonical]
                if not answer_allowed(
                    kind, judged, sent, first_attempt=attempts == 1, stopping=self.stop.is_set()
                ):
                    self.disallowed.append(f"{kind} {request_id} (a={a}, b={b}) attempt {attempts}: {judged}")
                if kind == "conflict" and code == "OK":
                    sent.conflict_accepted = True
            if code not in {c.name for c in RETRYABLE} or time.monotonic() > deadline:
                break
            target = (target + 1) % len(stubs)  # as a load balancer would, try the other replica
            self.stop.wait(backoff * (0.5 + rng.random()))
            backoff = min(1.0, backoff * 2)
        now = time.monotonic()
        with self._lock:
            self.counts[kind] += 1
            self.counts[f"{kind}_{code}"] += 1
            if code == "OK" and kind != "conflict":
                self.sent[canonical].acknowledged = True
            if code == "OK":
                self.ack_times.append(now)
                self.longest_wait_for_ack = max(self.longest_wait_for_ack, now - first)
        return code

    def longest_gap_without_ack(self, pauses: list[tuple[float, float]]) -> float:
        """The longest stretch (monotonic seconds) with no acknowledgement, leaving out deliberate pauses."""
        with self._lock:
            times = sorted(self.ack_times)
        longest = 0.0
        for before, after in itertools.pairwise(times):
            overlap = sum(max(0.0, min(after, end) - max(before, begin)) for begin, end in pauses)
            longest = max(longest, after - before - overlap)
        return longest
