"""The soak's stack: a 3-node KRaft cluster, two sum services and the ledger, on fixed free ports (so a
killed process comes back where its clients look for it) and in a state directory of its own. The
ledger's volume is a small tmpfs when this machine allows mounting one, so it can be filled up."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.stack import Ledger
from devstack.kafka_broker import free_port
from devstack.services import (
    ManagedProcess,
    grpc_health_status,
    http_ready,
    ledger_env,
    python_module,
    sum_service_env,
    wait_until,
)
from ledger_svc import consumer_status
from soak.cluster import KafkaCluster

TOPIC = "sums"
PARTITIONS = 6
START_TIMEOUT = 90.0


@dataclass
class SumService:
    process: ManagedProcess
    target: str

    def serving(self) -> bool:
        if not self.process.running:
            raise RuntimeError(
                f"{self.process.name} exited ({self.process.poll()}):\n{self.process.log_tail()}"
            )
        return grpc_health_status(self.target) == "SERVING"

    def restart(self, timeout: float = START_TIMEOUT) -> None:
        self.process.start()
        wait_until(self.serving, timeout, f"{self.process.name} to be SERVING", 0.1)


@dataclass
class LedgerService:
    api: Ledger
    data_dir: Path
    run_dir: Path
    volume_note: str

    @property
    def process(self) -> ManagedProcess:
        return self.api.process

    def ready(self) -> bool:
        if not self.process.running:
            raise RuntimeError(f"ledger exited ({self.process.poll()}):\n{self.process.log_tail()}")
        return http_ready(f"{self.api.url}/readyz")

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        wait_until(self.ready, timeout, "the ledger to be ready", 0.1)

    def consumer_pid(self) -> int:
        status = consumer_status.read(self.run_dir / "consumer-status.json")
        if status is None:
            raise RuntimeError("the ledger's consumer-status.json names no consumer")
        return status.pid

    def kill_consumer(self, timeout: float = 30) -> None:
        """SIGKILL only the consumer process; its supervisor must notice and stop the whole ledger."""
        os.kill(self.consumer_pid(), signal.SIGKILL)
        self.process.wait(timeout)

    def total_file(self) -> str | None:
        try:
            return (self.data_dir / "total").read_text()
        except OSError:
            return None


@dataclass
class Stack:
    state: Path
    cluster: KafkaCluster
    sums: list[SumService] = field(default_factory=list)
    ledger: LedgerService | None = None

    @property
    def the_ledger(self) -> LedgerService:
        assert self.ledger is not None, "the ledger was not started"
        return self.ledger

    def logs(self) -> dict[str, Path]:
        found = {s.process.name: s.process.log_path for s in self.sums}
        if self.ledger is not None:
            found["ledger"] = self.ledger.process.log_path
        return found


def _mount_tmpfs(path: Path, size_mib: int) -> str:
    """Mount a tmpfs of size_mib at path; returns what the volume is (or why it is a plain directory)."""
    try:
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size_mib}m", "tmpfs", str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError as exc:
        return f"plain directory (mount: {exc})"
    if done.returncode != 0:
        return f"plain directory (cannot mount: {done.stderr.strip()})"
    return f"tmpfs {size_mib} MiB"


def is_tmpfs(note: str) -> bool:
    return note.startswith("tmpfs")


def start(stack: contextlib.ExitStack, libs: Path, state: Path, volume_mib: int) -> Stack:
    """Everything up and ready; every process (and the mount) is undone when `stack` closes."""
    shutil.rmtree(state, ignore_errors=True)
    state.mkdir(parents=True)
    cluster = KafkaCluster(libs, state)
    stack.callback(cluster.stop)
    cluster.start()
    cluster.create_topic(TOPIC, PARTITIONS)
    cluster.create_topic(f"{TOPIC}.dlq", 1)
    soak = Stack(state, cluster)

    for n in (1, 2):
        port = free_port()
        env = sum_service_env(cluster.bootstrap, TOPIC, port, free_port())
        process = ManagedProcess(
            f"sum-svc-{n}", python_module("sum_svc"), env, state / f"logs/sum-svc-{n}.log"
        )
        stack.callback(process.stop)
        soak.sums.append(SumService(process, f"127.0.0.1:{port}"))
        process.start()

    data_dir, run_dir = state / "ledger-data", state / "ledger-run"
    data_dir.mkdir()
    note = _mount_tmpfs(data_dir, volume_mib)
    if is_tmpfs(note):
        stack.callback(subprocess.run, ["umount", "-l", str(data_dir)], check=False)
    port = free_port()
    env = ledger_env(
        cluster.bootstrap,
        TOPIC,
        port,
        data_dir,
        run_dir,
        LEDGER_GROUP_ID="distsum-soak",
        LEDGER_GROUP_INSTANCE_ID="soak-ledger",
        LEDGER_RETRY_INTERVAL_SECONDS="0.5",
        LEDGER_LOG_CHECK_INTERVAL_SECONDS="2",
    )
    process = ManagedProcess("ledger", python_module("ledger_svc"), env, state / "logs/ledger.log")
    # The ledger goes before the mount is undone (callbacks run last in, first out).
    stack.callback(process.stop)
    soak.ledger = LedgerService(Ledger(process, f"http://127.0.0.1:{port}"), data_dir, run_dir, note)
    process.start()

    deadline = time.monotonic() + START_TIMEOUT
    for service in soak.sums:
        wait_until(service.serving, max(1.0, deadline - time.monotonic()), f"{service.process.name} SERVING")
    soak.the_ledger.wait_ready(max(1.0, deadline - time.monotonic()))
    return soak
