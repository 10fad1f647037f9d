"""The local stack of the bench, from devstack's parts, on ports and a state directory of its own so it
never meets a running `make run`. Everything started is stopped when the ExitStack closes."""

from __future__ import annotations

import contextlib
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from devstack.kafka_broker import KafkaBroker, create_topic, free_port
from devstack.services import (
    ManagedProcess,
    grpc_health_status,
    http_json,
    http_ready,
    ledger_env,
    python_module,
    sum_service_env,
    wait_until,
)

TOPIC = "sums"


class LedgerStarting(RuntimeError):
    """The ledger answered 503: not ready, or its store not created yet."""


@dataclass(frozen=True)
class Ledger:
    process: ManagedProcess
    url: str

    def total(self) -> dict[str, object]:
        status, body = http_json(f"{self.url}/v1/total", timeout=10)
        if status == 503:
            raise LedgerStarting(f"GET {self.url}/v1/total answered 503: {body}")
        if status != 200 or not isinstance(body, dict):
            raise RuntimeError(f"GET {self.url}/v1/total answered {status}: {body}")
        return body

    def count(self) -> int:
        if not self.process.running:
            raise RuntimeError(
                f"{self.process.name} exited ({self.process.poll()}):\n{self.process.log_tail()}"
            )
        count = self.total()["count"]
        assert isinstance(count, int)
        return count

    def count_once_up(self) -> int:
        """The count, or 0 while the REST API is not up yet (or up before the consumer has created the
        store): for timing a ledger from its start."""
        try:
            return self.count()
        except (OSError, ValueError, LedgerStarting):
            return 0

    def wait_settled(self, at_least: int, at_most: int, quiet: float = 2.0, timeout: float = 300) -> int:
        """Wait until the count has reached `at_least` and then stopped moving for `quiet` seconds, or
        has reached `at_most` (nothing more can come); return it."""
        deadline = time.monotonic() + timeout
        last, since = -1, time.monotonic()
        while time.monotonic() < deadline:
            count = self.count()
            if count != last:
                last, since = count, time.monotonic()
            if count >= at_most or (count >= at_least and time.monotonic() - since >= quiet):
                return count
            time.sleep(0.1)
        raise RuntimeError(
            f"{self.process.name}: count {last}, expected {at_least}..{at_most}, after {timeout} s"
        )


def fresh_dir(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def start_broker(stack: contextlib.ExitStack, libs: Path, state: Path, partitions: int) -> KafkaBroker:
    broker = stack.enter_context(KafkaBroker(libs, state / "kafka"))
    create_topic(broker.bootstrap, TOPIC, partitions)
    create_topic(broker.bootstrap, f"{TOPIC}.dlq", 1)
    return broker


def _started(stack: contextlib.ExitStack, process: ManagedProcess) -> ManagedProcess:
    stack.callback(process.stop)
    return process.start()


def start_sum_service(stack: contextlib.ExitStack, bootstrap: str, state: Path) -> tuple[ManagedProcess, str]:
    port = free_port()
    env = sum_service_env(bootstrap, TOPIC, port, free_port())
    process = _started(
        stack, ManagedProcess("sum-svc", python_module("sum_svc"), env, state / "logs/sum-svc.log")
    )
    target = f"127.0.0.1:{port}"

    def serving() -> bool:
        if not process.running:
            raise RuntimeError(f"sum-svc exited ({process.poll()}):\n{process.log_tail()}")
        return grpc_health_status(target) == "SERVING"

    wait_until(serving, 60, "the sum service to be SERVING")
    return process, target


def start_ledger(
    stack: contextlib.ExitStack, bootstrap: str, topic: str, state: Path, name: str, *, wait: bool = True
) -> Ledger:
    """A ledger of its own (directories, group, port); `wait` waits until /readyz says ready."""
    port = free_port()
    env = ledger_env(
        bootstrap,
        topic,
        port,
        fresh_dir(state / f"{name}-data"),
        fresh_dir(state / f"{name}-run"),
        LEDGER_GROUP_ID=f"distsum-{name}",
        LEDGER_GROUP_INSTANCE_ID=name,
    )
    process = _started(
        stack, ManagedProcess(name, python_module("ledger_svc"), env, state / f"logs/{name}.log")
    )
    ledger = Ledger(process, f"http://127.0.0.1:{port}")
    if not wait:
        return ledger

    def ready() -> bool:
        if not process.running:
            raise RuntimeError(f"{name} exited ({process.poll()}):\n{process.log_tail()}")
        return http_ready(f"{ledger.url}/readyz")

    wait_until(ready, 60, f"{name} to be ready")
    return ledger
