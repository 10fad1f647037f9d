"""CPU of every actor of a measured run, from /proc: the sum service measured (and its threads by kind),
the ledger consuming what it publishes, the Kafka broker, and the load generator (ghz).

The services and the broker lead process groups of their own (proc_cpu). A thread's kind comes from its
kernel name: the service names its delivery-report thread (distsum.processes.name_os_thread), librdkafka
names its threads rdk:*, gRPC core its own, and the main thread runs the event loop. A thread that ends
between two readings takes its ticks with it, so the kinds are a breakdown, never more exact than the
process group's total.
"""

from __future__ import annotations

import resource
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from bench.proc_cpu import CLOCK_TICKS, group_ticks, stat_ticks

THREAD_KINDS = ("loop", "delivery", "librdkafka", "grpc", "other")


def thread_kind(comm: str, main: bool) -> str:
    if main:
        return "loop"
    if comm.startswith("kafka-delivery"):
        return "delivery"
    if comm.startswith("rdk:"):
        return "librdkafka"
    if comm.startswith(("grpc", "default-exec", "resolver-exec", "timer_manager")):
        return "grpc"
    return "other"


def thread_ticks(pid: int, proc: Path = Path("/proc")) -> dict[str, int]:
    """CPU clock ticks so far of the live threads of one process, summed by kind."""
    ticks = dict.fromkeys(THREAD_KINDS, 0)
    for task in (proc / str(pid) / "task").glob("[0-9]*"):
        try:
            comm = (task / "comm").read_text().strip()
            _, used = stat_ticks((task / "stat").read_text())
        except (OSError, ValueError):  # ended between the listing and the read
            continue
        ticks[thread_kind(comm, task.name == str(pid))] += used
    return ticks


def children_cpu_seconds() -> float:
    """CPU seconds of the children this process has waited for (each ghz run, once it has ended)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass(frozen=True)
class Reading:
    groups: Mapping[str, int]  # actor -> ticks
    threads: Mapping[str, int]  # kind of the service's threads -> ticks
    load_seconds: float


@dataclass(frozen=True)
class Actors:
    """The process groups of the service measured, the ledger and the broker."""

    service: int
    ledger: int
    broker: int

    def read(self) -> Reading:
        groups = {"service": self.service, "ledger": self.ledger, "broker": self.broker}
        return Reading(
            {name: group_ticks(pgrp) for name, pgrp in groups.items()},
            thread_ticks(self.service),
            children_cpu_seconds(),
        )


def ms_per_call(before: Reading, after: Reading, calls: int) -> dict[str, float]:
    """CPU milliseconds per call of each actor over the interval; `system` is service + ledger + broker
    (what a deployment pays), `load` the load generator's, `threads.<kind>` the service's breakdown."""
    if calls <= 0:
        raise ValueError("no calls were measured")
    per_call = {
        name: (after.groups[name] - before.groups[name]) * 1000 / CLOCK_TICKS / calls for name in after.groups
    }
    per_call["system"] = per_call["service"] + per_call["ledger"] + per_call["broker"]
    per_call["load"] = (after.load_seconds - before.load_seconds) * 1000 / calls
    for kind in THREAD_KINDS:
        used = max(0, after.threads[kind] - before.threads[kind])
        per_call[f"threads.{kind}"] = used * 1000 / CLOCK_TICKS / calls
    return per_call
