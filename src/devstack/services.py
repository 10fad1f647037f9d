"""Start, watch and stop the services as real processes (used by `make run` and the tests)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from distsum.processes import die_with_parent

T = TypeVar("T")


class WaitTimeout(AssertionError):
    pass


def wait_until(probe: Callable[[], T | None], timeout: float, what: str, interval: float = 0.05) -> T:
    """Poll probe until it returns something truthy; fail after timeout naming what was awaited."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while True:
        last = probe()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise WaitTimeout(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")
        time.sleep(interval)


class ManagedProcess:
    """A child process in its own session, logging to a file, that dies with its parent."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_path: Path):
        self.name = name
        self.argv = argv
        self.env = env
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> ManagedProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                self.argv,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent(),  # noqa: PLW1509
            )
        return self

    @property
    def pid(self) -> int:
        assert self._process is not None, f"{self.name} was never started"
        return self._process.pid

    def poll(self) -> int | None:
        return None if self._process is None else self._process.poll()

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def stop(self, timeout: float = 20) -> int | None:
        """SIGTERM the whole process group, then SIGKILL it if it does not go in time."""
        if self._process is None:
            return None
        if self._process.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                self._process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self._process.wait()
        return self._process.returncode

    def kill(self) -> None:
        """SIGKILL the whole process group: a crash with no chance to clean up."""
        if self._process is not None and self._process.poll() is None:
            self._signal_group(signal.SIGKILL)
            self._process.wait()

    def wait(self, timeout: float) -> int:
        assert self._process is not None
        return self._process.wait(timeout)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def _signal_group(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signum)


def python_module(module: str) -> list[str]:
    return [sys.executable, "-m", module]


def sum_service_env(
    bootstrap: str, topic: str, grpc_port: int, metrics_port: int, **extra: str
) -> dict[str, str]:
    return {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "KAFKA_TOPIC": topic,
        "SUM_GRPC_HOST": "127.0.0.1",
        "SUM_GRPC_PORT": str(grpc_port),
        "SUM_METRICS_PORT": str(metrics_port),
        **extra,
    }


def ledger_env(
    bootstrap: str, topic: str, http_port: int, data_dir: Path, run_dir: Path, **extra: str
) -> dict[str, str]:
    return {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "KAFKA_TOPIC": topic,
        "LEDGER_HTTP_HOST": "127.0.0.1",
        "LEDGER_HTTP_PORT": str(http_port),
        "LEDGER_DATA_DIR": str(data_dir),
        "LEDGER_RUN_DIR": str(run_dir),
        **extra,
    }


def grpc_health_status(target: str, service: str = "", timeout: float = 1.0) -> str | None:
    """The health status name (SERVING, NOT_SERVING, ...) or None if the server does not answer."""
    with grpc.insecure_channel(target) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout
            )
        except grpc.RpcError:
            return None
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))


def http_json(url: str, timeout: float = 2.0) -> tuple[int, Any]:
    """(status, parsed JSON body); raises OSError when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def http_ready(url: str) -> bool:
    try:
        return http_json(url)[0] == 200
    except (OSError, ValueError):
        return False
