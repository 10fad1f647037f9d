"""A single-node Apache Kafka broker (KRaft, combined broker+controller) run from plain jars.

The jars come from tools/kafka/fetch-kafka.sh (Maven Central, hash-locked), so
tests and `make run` use the real broker without Docker or a Kafka download.
"""

from __future__ import annotations

import base64
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient

# confluent_kafka.admin re-exports NewTopic without listing it in __all__, which
# mypy --strict rejects; cimpl is where the class (and its stub) actually lives.
from confluent_kafka.cimpl import NewTopic

REPO_ROOT = Path(__file__).resolve().parents[2]
FETCH_SCRIPT = REPO_ROOT / "tools" / "kafka" / "fetch-kafka.sh"

_PR_SET_PDEATHSIG = 1
# Between metadata polls; each poll itself waits up to 1 s for an answer.
_POLL_INTERVAL = 0.1

# INFO to stdout (redirected to broker.log) and no file appenders, so nothing
# lands outside data_dir. Per-partition, raft-state, thread-start and config-dump
# chatter is most of Kafka's INFO output, so those loggers only report WARN+.
_LOG4J2_PROPERTIES = """\
status = warn
appender.out.type = Console
appender.out.name = STDOUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d{HH:mm:ss,SSS}] %-5p %m (%c{1})%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = STDOUT
"""
_QUIET_LOGGERS = (
    "state.change.logger",
    "kafka.cluster",
    "kafka.log",
    "kafka.server.ClientQuotaManager$ThrottledChannelReaper",
    "kafka.server.NodeToControllerChannelManagerImpl",
    "kafka.server.NodeToControllerRequestThread",
    "org.apache.kafka.common.config",
    "org.apache.kafka.controller",
    "org.apache.kafka.coordinator.common.runtime",
    "org.apache.kafka.image.loader",
    "org.apache.kafka.raft",
    "org.apache.kafka.server.purgatory",
    "org.apache.kafka.server.util.timer",
    "org.apache.kafka.storage.internals",
)
_LOG4J2_PROPERTIES += "".join(
    f"logger.q{i}.name = {name}\nlogger.q{i}.level = WARN\n" for i, name in enumerate(_QUIET_LOGGERS)
)


def ensure_kafka_libs() -> Path:
    """Fetch (first time) and verify the broker jars; return the libs directory."""
    proc = subprocess.run([str(FETCH_SCRIPT)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{FETCH_SCRIPT} failed (exit {proc.returncode}):\n{proc.stderr}")
    lines = proc.stdout.strip().splitlines()
    if not lines:
        raise RuntimeError(f"{FETCH_SCRIPT} printed no libs path:\n{proc.stderr}")
    return Path(lines[-1])


def free_port() -> int:
    """A currently free loopback TCP port (racy by nature; fine for a dev broker)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _die_with_parent() -> Callable[[], None]:
    # ctypes is loaded here, before fork: only async-signal-safe work may run in
    # the child between fork and exec.
    libc = ctypes.CDLL(None, use_errno=True)
    parent = os.getpid()

    def preexec() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        # The parent may have died before prctl took effect.
        if os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGKILL)

    return preexec


def _new_cluster_id() -> str:
    # Kafka's Uuid string form: URL-safe base64 of 16 bytes, unpadded. A leading
    # '-' would be taken for an option by the format tool's argument parser.
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def _admin(bootstrap: str) -> AdminClient:
    # Short reconnect backoff so a broker that has just come up is noticed at
    # once rather than after librdkafka's default back-off of up to 10 s;
    # log_level 0 silences the "connection refused" lines while it starts.
    conf: dict[str, Any] = {
        "bootstrap.servers": bootstrap,
        "reconnect.backoff.ms": 50,
        "reconnect.backoff.max.ms": 250,
        "log_level": 0,
    }
    return AdminClient(conf)


class KafkaBroker:
    """One KRaft node; ports and data dir stay fixed so a restart keeps the data."""

    def __init__(  # noqa: PLR0917 - the positional signature is the documented API
        self,
        libs_dir: Path,
        data_dir: Path,
        port: int | None = None,
        controller_port: int | None = None,
        partitions: int = 4,
        heap: str = "512m",
    ) -> None:
        self.libs_dir = libs_dir
        self.data_dir = data_dir.resolve()
        self.port = port if port is not None else free_port()
        self.controller_port = controller_port if controller_port is not None else free_port()
        self.partitions = partitions
        self.heap = heap
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def log_file(self) -> Path:
        return self.data_dir / "broker.log"

    def _java(self, main: str, *args: str) -> list[str]:
        java_home = os.environ.get("JAVA_HOME")
        java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
        if java is None:
            raise RuntimeError("java not found on PATH (Kafka needs Java 17+)")
        return [
            java,
            f"-Xmx{self.heap}",
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.data_dir / 'log4j2.properties'}",
            f"-Dkafka.logs.dir={self.data_dir / 'logs'}",
            "-cp",
            f"{self.libs_dir}/*",
            main,
            *args,
        ]

    def _write_config(self) -> Path:
        kraft_dir = self.data_dir / "kraft-logs"
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            # Static voters: the ports never change for this data dir, and it
            # avoids the dynamic-quorum (--standalone) format variant.
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(kraft_dir),
            "num.partitions": str(self.partitions),
            "default.replication.factor": "1",
            "min.insync.replicas": "1",
            "offsets.topic.replication.factor": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "auto.create.topics.enable": "false",
        }
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "logs").mkdir(exist_ok=True)
        (self.data_dir / "log4j2.properties").write_text(_LOG4J2_PROPERTIES)
        config = self.data_dir / "server.properties"
        config.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        return config

    def start(self) -> None:
        """Launch the broker; formats the storage the first time only. Returns at once."""
        if self.is_running:
            raise RuntimeError(f"broker on {self.bootstrap} is already running")
        config = self._write_config()
        if not (self.data_dir / "kraft-logs" / "meta.properties").exists():
            cmd = self._java(
                "kafka.tools.StorageTool",
                "format",
                "--config",
                str(config),
                f"--cluster-id={_new_cluster_id()}",
                "--ignore-formatted",
            )
            fmt = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if fmt.returncode != 0:
                raise RuntimeError(f"formatting {self.data_dir} failed:\n{fmt.stdout}{fmt.stderr}")
        with self.log_file.open("ab") as log:
            self._proc = subprocess.Popen(
                self._java("kafka.Kafka", str(config)),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.data_dir,
                # Own session: a Ctrl-C on the terminal reaches the supervisor,
                # which stops the broker in order, not the JVM directly.
                start_new_session=True,
                # preexec_fn is the only hook to set PR_SET_PDEATHSIG in the child; it
                # only calls prctl/getppid/kill, which are safe after fork.
                preexec_fn=_die_with_parent(),  # noqa: PLW1509
            )

    def wait_ready(self, timeout: float = 60) -> None:
        """Block until the broker answers metadata requests, or raise RuntimeError."""
        deadline = time.monotonic() + timeout
        admin = _admin(self.bootstrap)
        while True:
            if self._proc is None:
                raise RuntimeError("broker was not started")
            if self._proc.poll() is not None:
                raise RuntimeError(
                    f"broker exited with code {self._proc.returncode} before becoming ready; "
                    f"tail of {self.log_file}:\n{_tail(self.log_file)}"
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RuntimeError(
                    f"broker on {self.bootstrap} not ready after {timeout}s; "
                    f"tail of {self.log_file}:\n{_tail(self.log_file)}"
                )
            try:
                if admin.list_topics(timeout=min(1.0, remaining)).brokers:
                    return
            except KafkaException:
                pass
            time.sleep(_POLL_INTERVAL)

    def stop(self, timeout: float = 30) -> None:
        """Clean shutdown (SIGTERM), escalating to SIGKILL after `timeout` seconds."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

    def kill(self) -> None:
        """Crash the broker (SIGKILL), e.g. to test recovery."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        self._proc = None

    def __enter__(self) -> KafkaBroker:
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def create_topic(bootstrap: str, name: str, partitions: int, timeout: float = 30) -> None:
    """Create `name` (an existing one is fine) and wait until every partition has a leader."""
    deadline = time.monotonic() + timeout
    admin = _admin(bootstrap)
    futures = admin.create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=1)],
        operation_timeout=timeout,
        request_timeout=timeout,
    )
    try:
        futures[name].result(timeout)
    except KafkaException as e:
        if e.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
            raise
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise RuntimeError(
                f"topic {name!r} has no leader for all {partitions} partitions after {timeout}s"
            )
        try:
            topic = admin.list_topics(topic=name, timeout=min(1.0, remaining)).topics.get(name)
        except KafkaException:
            topic = None
        if topic is not None and topic.error is None:
            if len(topic.partitions) != partitions:
                raise RuntimeError(
                    f"topic {name!r} exists with {len(topic.partitions)} partitions, not {partitions}"
                )
            if all(p.leader >= 0 and p.error is None for p in topic.partitions.values()):
                return
        time.sleep(_POLL_INTERVAL)
