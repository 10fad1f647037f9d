"""The local stack, built one way for every caller (`make run`, `make bench`, `make soak`, the integration
and PromQL tests): Kafka (one broker or an N-node KRaft cluster), any number of sum services and ledgers
as real processes on fixed or free loopback ports, each returned as a typed handle. Everything started is
stopped when the ExitStack given to the builder closes."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import grpc

from distsum.clients.ledger import LedgerClient, Total
from distsum.clients.sum_service import SumClient, health_status
from distsum.clients.waiting import wait_until
from ledger_svc import consumer_status
from ledger_svc.config import LedgerSettings
from localstack.certificates import KafkaTls, LocalTls
from localstack.kafka_acls import LEDGER_PRINCIPAL, SUM_PRINCIPAL, grant, service_grants
from localstack.kafka_broker import KafkaBroker, admin_client, ensure_kafka_libs
from localstack.kafka_cluster import KafkaCluster
from localstack.ports import free_port
from localstack.processes import ManagedProcess, python_module

TOPIC = "sums"
# The consumer groups a locked-down local stack lets the ledger use: any named distsum-* (the default,
# and the soak's and tests' own).
LOCAL_LEDGER_GROUPS = "distsum-"
START_TIMEOUT = 60.0
# The ledger's pause before it tries Kafka or its store again, shorter than a cluster's default so the
# faults the tests and the soak inject recover in their time.
QUICK_RECOVERY = {"LEDGER_RETRY_INTERVAL_SECONDS": "0.5"}


class Kafka(Protocol):
    """A running broker or cluster, as the stack uses it."""

    @property
    def bootstrap(self) -> str: ...

    @property
    def is_running(self) -> bool: ...

    def create_topic(self, name: str, partitions: int, timeout: float = ...) -> None: ...


def create_event_topics(kafka: Kafka, topic: str, partitions: int) -> None:
    """The events' topic and its dead-letter topic, as the services expect them."""
    kafka.create_topic(topic, partitions)
    kafka.create_topic(LedgerSettings().dead_letters_for(topic), 1)


@dataclass
class SumService:
    process: ManagedProcess
    target: str
    metrics_url: str
    credentials: grpc.ChannelCredentials | None = None  # set when the stack serves mutual TLS

    @property
    def name(self) -> str:
        return self.process.name

    def client(self) -> SumClient:
        """A new channel to this service (close it, or use it in a `with`)."""
        return SumClient(self.target, self.credentials)

    def status(self) -> str | None:
        """Its health status; raises when the process has exited."""
        self.process.assert_running()
        return health_status(self.target, credentials=self.credentials)

    def wait_status(self, status: str = "SERVING", timeout: float = START_TIMEOUT) -> None:
        wait_until(lambda: self.status() == status, timeout, f"{self.name} to be {status}", 0.1)

    def restart(self, timeout: float = START_TIMEOUT) -> None:
        self.process.start()
        self.wait_status("SERVING", timeout)


def read_total_file(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def wait_total_file(path: Path, total: object, timeout: float = 30) -> None:
    """Until the `total` file reads `total`: it is replaced just after the store commit the REST API
    already shows (a ledger run as a process here, or in a container on a mounted volume)."""
    expected = f"{total}\n"
    wait_until(lambda: read_total_file(path) == expected, timeout, f"{path} to read {expected!r}")


@dataclass
class Ledger:
    process: ManagedProcess
    client: LedgerClient
    settings: LedgerSettings  # the directories, files and ports the ledger was started with

    @property
    def metrics_url(self) -> str:
        """/metrics on the ledger's metrics port (also /healthz, the liveness the kubelet reads)."""
        return f"http://127.0.0.1:{self.settings.metrics_port}/metrics"

    @property
    def name(self) -> str:
        return self.process.name

    @property
    def url(self) -> str:
        return self.client.url

    @property
    def data_dir(self) -> Path:
        return self.settings.data_dir

    def total(self) -> Total:
        return self.client.total()

    def count(self) -> int:
        self.process.assert_running()
        return self.client.count()

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        self.client.wait_ready(timeout)

    def restart(self, timeout: float = START_TIMEOUT) -> None:
        self.process.start()
        self.wait_ready(timeout)

    def total_file(self) -> str | None:
        """The text of the `total` file on the ledger's volume, or None while there is none."""
        return read_total_file(self.settings.total_file)

    def wait_total_file(self, total: object, timeout: float = 30) -> None:
        wait_total_file(self.settings.total_file, total, timeout)

    def consumer_pid(self) -> int:
        status = consumer_status.read(self.settings.status_file)
        if status is None:
            raise RuntimeError(f"{self.settings.status_file} names no consumer")
        return status.pid

    def pause_consumer(self) -> int:
        """SIGSTOP only the consumer process (its supervisor and web server keep running); its pid."""
        pid = self.consumer_pid()
        os.kill(pid, signal.SIGSTOP)
        return pid

    def resume_consumer(self, pid: int) -> None:
        os.kill(pid, signal.SIGCONT)

    def kill_consumer(self, timeout: float = 30) -> None:
        """SIGKILL only the consumer process; its supervisor must notice and stop the whole ledger."""
        os.kill(self.consumer_pid(), signal.SIGKILL)
        self.process.wait(timeout)


@dataclass
class LocalStack:
    """Services on one Kafka and topic, with their state under `state_dir` (`<name>-data`, `<name>-run`,
    `logs/<name>.log`). `service_env` is added to every service's environment, before each call's `env`."""

    resources: contextlib.ExitStack
    bootstrap: str
    topic: str
    state_dir: Path
    service_env: Mapping[str, str] = field(default_factory=dict)
    kafka: Kafka | None = None
    # Both services with mutual TLS, and the harness's clients with its client certificate.
    tls: LocalTls | None = None
    # A locked-down Kafka: each service connects with its own client certificate.
    kafka_tls: KafkaTls | None = None

    def _kafka_identity(self, principal: str) -> Mapping[str, str]:
        return self.kafka_tls.client_env(principal) if self.kafka_tls else {}

    def _process_env(self, env: Mapping[str, str]) -> dict[str, str]:
        """A service process's environment: this one's, the stack's Kafka and topic, then env."""
        return {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap, "KAFKA_TOPIC": self.topic, **env}

    def _start(self, name: str, module: str, env: dict[str, str]) -> ManagedProcess:
        process = ManagedProcess(
            name, python_module(module), self._process_env(env), self.state_dir / "logs" / f"{name}.log"
        )
        self.resources.callback(process.stop)
        return process.start()

    def sum_service(
        self,
        name: str = "sum-svc",
        *,
        grpc_port: int | None = None,
        metrics_port: int | None = None,
        wait: bool = True,
        env: Mapping[str, str] | None = None,
        plaintext: bool = False,
    ) -> SumService:
        """A sum service; `wait` waits until it is SERVING. `plaintext`: without TLS on a TLS stack (the
        bench's comparison)."""
        grpc_port, metrics_port = grpc_port or free_port(), metrics_port or free_port()
        tls = None if plaintext else self.tls
        process = self._start(
            name,
            "sum_svc",
            {
                **self.service_env,
                **self._kafka_identity(SUM_PRINCIPAL),
                **(tls.server_env() if tls else {}),
                "SUM_GRPC_HOST": "127.0.0.1",
                "SUM_GRPC_PORT": str(grpc_port),
                "SUM_METRICS_PORT": str(metrics_port),
                **(env or {}),
            },
        )
        credentials = tls.channel_credentials() if tls else None
        target, metrics_url = f"127.0.0.1:{grpc_port}", f"http://127.0.0.1:{metrics_port}/metrics"
        service = SumService(process, target, metrics_url, credentials)
        if wait:
            service.wait_status("SERVING")
        return service

    def ledger(
        self,
        name: str = "ledger",
        *,
        port: int | None = None,
        metrics_port: int | None = None,
        data_dir: Path | None = None,
        wait: bool = True,
        env: Mapping[str, str] | None = None,
    ) -> Ledger:
        """A ledger; `wait` waits until /readyz says ready."""
        port = port or free_port()
        settings = LedgerSettings(
            data_dir=data_dir or self.state_dir / f"{name}-data",
            run_dir=self.state_dir / f"{name}-run",
            metrics_port=metrics_port or free_port(),
        )
        process = self._start(
            name,
            "ledger_svc",
            {
                **self.service_env,
                **self._kafka_identity(LEDGER_PRINCIPAL),
                **(self.tls.server_env() if self.tls else {}),
                "LEDGER_HTTP_HOST": "127.0.0.1",
                "LEDGER_HTTP_PORT": str(port),
                "LEDGER_METRICS_PORT": str(settings.metrics_port),
                "LEDGER_DATA_DIR": str(settings.data_dir),
                "LEDGER_RUN_DIR": str(settings.run_dir),
                **(env or {}),
            },
        )
        scheme, context = ("https", self.tls.ssl_context()) if self.tls else ("http", None)
        client = LedgerClient(f"{scheme}://127.0.0.1:{port}", alive=process.assert_running, context=context)
        ledger = Ledger(process, client, settings)
        if wait:
            ledger.wait_ready()
        return ledger

    def ledger_backup(
        self, *args: str, data_dir: Path, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Run `python -m ledger_svc.backup ARGS` on the ledger volume at data_dir, configured as a ledger
        of this stack (its Kafka, topic and identity), as an operator would; check the exit code yourself."""
        env = {**self.service_env, **self._kafka_identity(LEDGER_PRINCIPAL), "LEDGER_DATA_DIR": str(data_dir)}
        return subprocess.run(
            [*python_module("ledger_svc.backup"), *args],
            env=self._process_env(env),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


@contextlib.contextmanager
def local_stack(
    state_dir: Path,
    *,
    kafka_nodes: int = 1,
    kafka_port: int | None = None,
    controller_port: int | None = None,
    partitions: int = 6,
    topic: str = TOPIC,
    service_env: Mapping[str, str] | None = None,
    tls: LocalTls | None = None,
    kafka_tls: KafkaTls | None = None,
) -> Iterator[LocalStack]:
    """Kafka up with the events' topics (a single broker on the given ports, or a cluster of
    `kafka_nodes` on free ports), and a LocalStack on it (with mutual TLS to the sum service when `tls`
    is given); everything stops when the block ends. With `kafka_tls`, Kafka is locked down and each
    service gets only its own grants (localstack.kafka_acls; the ledger's for every group named
    distsum-*)."""
    libs = ensure_kafka_libs()
    with contextlib.ExitStack() as resources:
        kafka: KafkaBroker | KafkaCluster
        if kafka_nodes == 1:
            kafka = resources.enter_context(
                KafkaBroker(libs, state_dir / "kafka", kafka_port, controller_port, tls=kafka_tls)
            )
        else:
            kafka = KafkaCluster(libs, state_dir, kafka_nodes, tls=kafka_tls)
            resources.callback(kafka.stop)
            kafka.start()
        create_event_topics(kafka, topic, partitions)
        if kafka_tls is not None:
            grants = service_grants(topic, LedgerSettings().dead_letters_for(topic), LOCAL_LEDGER_GROUPS)
            if isinstance(kafka, KafkaCluster):
                kafka.grant(grants)
            else:
                grant(admin_client(kafka.bootstrap, kafka.client_security), grants)
        yield LocalStack(
            resources, kafka.bootstrap, topic, state_dir, service_env or {}, kafka, tls, kafka_tls
        )
