"""An Apache Kafka node (KRaft, combined broker+controller) run from plain jars: a single-node broker by
default, or one node of a cluster whose voters are given (`make soak` runs three).

The jars come from tools/kafka/fetch-kafka.sh (Maven Central, hash-locked), so
tests and `make run` use the real broker without Docker or a Kafka download.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient

# confluent_kafka.admin re-exports these without listing them in __all__, which mypy --strict
# rejects; their modules are where the classes (and their stubs) actually live.
from confluent_kafka.admin._scram import ScramCredentialInfo, ScramMechanism, UserScramCredentialUpsertion
from confluent_kafka.cimpl import NewTopic

from distsum.kafka import clients as kafka_clients
from distsum.processes import die_with_parent
from localstack.certificates import KAFKA_BROKER, KAFKA_TOOLING, KafkaTls
from localstack.ports import free_port

KAFKA_TOOLS = Path(__file__).resolve().parents[2] / "tools" / "kafka"
FETCH_SCRIPT = KAFKA_TOOLS / "fetch-kafka.sh"
# Shared with the e2e Kafka image (offline/kafka-image.sh): one node's settings, and its logging.
NODE_PROPERTIES = KAFKA_TOOLS / "kraft-node.properties"
TLS_PROPERTIES = KAFKA_TOOLS / "kraft-tls.properties"
LOG4J2_PROPERTIES = KAFKA_TOOLS / "log4j2.properties"

# Of a node locked down with TLS: the node itself and the tooling (readiness, topics, ACLs).
SUPER_USERS = f"User:{KAFKA_BROKER};User:{KAFKA_TOOLING}"

_SCRAM_ITERATIONS = 4096  # the least Kafka accepts for SCRAM-SHA-512
_PR_SET_PDEATHSIG = 1
_POLL_INTERVAL = 0.1  # between metadata polls, each of which waits up to 1 s itself


def node_properties(template_file: Path = NODE_PROPERTIES, **fields: object) -> str:
    """A node's properties template (tools/kafka/kraft-*.properties) with its @name@ fields filled in;
    every field must be given."""
    template = template_file.read_text()
    missing = sorted(set(re.findall(r"@(\w+)@", template)) - fields.keys())
    if missing:
        raise ValueError(f"{template_file.name} needs values for {missing}")
    return re.sub(r"@(\w+)@", lambda match: str(fields[match[1]]), template)


def ensure_kafka_libs() -> Path:
    """Fetch (first time) and verify the broker jars; return the libs directory."""
    # Through bash so a checkout that lost the executable bit still works.
    proc = subprocess.run(["bash", str(FETCH_SCRIPT)], capture_output=True, text=True, check=False)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{FETCH_SCRIPT} failed (exit {proc.returncode}):\n{proc.stderr}")
    return Path(lines[-1])


def new_cluster_id() -> str:
    """A fresh id to format every node of one cluster with."""
    # Kafka's Uuid string form: URL-safe base64 of 16 bytes, unpadded. A leading
    # '-' would be taken for an option by the format tool's argument parser.
    while (cid := base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")).startswith("-"):
        pass
    return cid


def admin_client(bootstrap: str, security: Mapping[str, Any] | None = None) -> AdminClient:
    # A short reconnect backoff notices a broker that has just come up at once
    # (librdkafka backs off up to 10 s by default); log_level 0 silences the
    # "connection refused" lines printed while it starts.
    return kafka_clients.admin(
        bootstrap,
        settings={"log_level": 0, "reconnect.backoff.ms": 50, "reconnect.backoff.max.ms": 250},
        security=security,
    )


class KafkaBroker:
    """One KRaft node; ports and data dir stay fixed so a restart keeps the data.

    Alone by default (node 1, its own only voter, replication 1). For a node of a cluster, pass its
    `node_id`, the cluster's `voters` (`id@host:controller_port,...`), the `replication` factor of the
    internal topics and defaults (min.insync.replicas is then 2), and set `format_cluster_id` to the
    same id on every node before its storage is first formatted. With `tls`, it listens with TLS only,
    requires client certificates and enforces ACLs; its own calls (readiness, topics) go as the tooling's
    super user (`client_security`)."""

    def __init__(  # noqa: PLR0917 - the positional signature is the documented API
        self,
        libs_dir: Path,
        data_dir: Path,
        port: int | None = None,
        controller_port: int | None = None,
        partitions: int = 4,
        heap: str = "512m",
        *,
        node_id: int = 1,
        voters: str | None = None,
        replication: int = 1,
        tls: KafkaTls | None = None,
    ) -> None:
        self.libs_dir = libs_dir
        self.data_dir = data_dir.resolve()
        self.port = port if port is not None else free_port()
        while controller_port is None or controller_port == self.port:
            controller_port = free_port()
        self.controller_port = controller_port
        self.partitions = partitions
        self.heap = heap
        self.node_id = node_id
        self.voters = voters or f"{node_id}@127.0.0.1:{self.controller_port}"
        self.replication = replication
        self.min_insync = min(replication, 2)
        self.format_cluster_id: str | None = None
        self.log_file = self.data_dir / "broker.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self.tls = tls
        self.client_security = tls.client_security(KAFKA_TOOLING) if tls else {}
        # A locked-down node also takes SCRAM-SHA-512 passwords, on a port of their own.
        self.scram_port = free_port() if tls else None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def scram_bootstrap(self) -> str:
        """The address of the SCRAM listener (a node started with `tls` only)."""
        if self.scram_port is None:
            raise RuntimeError("only a node locked down with tls has a SCRAM listener")
        return f"127.0.0.1:{self.scram_port}"

    def create_scram_user(self, name: str, password: str, timeout: float = 30) -> None:
        """Create (or change the password of) the SCRAM-SHA-512 user `name`, as the tooling."""
        admin = admin_client(self.bootstrap, self.client_security)
        credential = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, _SCRAM_ITERATIONS)
        upsert = UserScramCredentialUpsertion(name, credential, password.encode())
        for future in admin.alter_user_scram_credentials([upsert], request_timeout=timeout).values():
            future.result(timeout)

    @property
    def _kraft_dir(self) -> Path:
        return self.data_dir / "kraft-logs"

    @property
    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def process_group(self) -> int:
        """The running broker's process group (it leads its own session: the JVM and nothing else)."""
        if self._proc is None or self._proc.poll() is not None:
            raise RuntimeError(f"broker on {self.bootstrap} is not running")
        return self._proc.pid

    def _java(self, main: str, *args: str) -> list[str]:
        java_home = os.environ.get("JAVA_HOME")
        java = str(Path(java_home, "bin", "java")) if java_home else shutil.which("java")
        if java is None:
            raise RuntimeError("java not found on PATH (Kafka 4 needs Java 17+)")
        log4j = f"-Dlog4j2.configurationFile={self.data_dir / 'log4j2.properties'}"
        jvm = [f"-Xmx{self.heap}", "-XX:+ExitOnOutOfMemoryError", "-Djava.awt.headless=true", log4j]
        jvm += [f"-Dkafka.logs.dir={self.data_dir / 'logs'}", "-cp", f"{self.libs_dir}/*"]
        return [java, *jvm, main, *args]

    def _tail(self, lines: int = 40) -> str:
        text = self.log_file.read_text(errors="replace") if self.log_file.exists() else "(no log)\n"
        return f"tail of {self.log_file}:\n" + "\n".join(text.splitlines()[-lines:])

    def start(self) -> None:
        """Launch the broker (formatting storage the first time only) and return at once.

        Call from a long-lived thread: PR_SET_PDEATHSIG fires when the *thread*
        that started the JVM exits, not just the process.
        """
        if self.is_running:
            raise RuntimeError(f"broker on {self.bootstrap} is already running")
        kraft_dir = self._kraft_dir
        (self.data_dir / "logs").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(LOG4J2_PROPERTIES, self.data_dir / "log4j2.properties")
        config = self.data_dir / "server.properties"
        config.write_text(
            node_properties(
                node_id=self.node_id,
                voters=self.voters,
                listen_host="127.0.0.1",
                advertised_host="127.0.0.1",
                port=self.port,
                controller_port=self.controller_port,
                log_dirs=kraft_dir,
                partitions=self.partitions,
                replication=self.replication,
                min_insync=self.min_insync,
            )
            + (self._tls_properties(self.tls) if self.tls else "")
        )
        if not (kraft_dir / "meta.properties").exists():
            cluster_id = f"--cluster-id={self.format_cluster_id or new_cluster_id()}"
            cmd = self._java("kafka.tools.StorageTool", "format", "--config", str(config), cluster_id)
            fmt = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if fmt.returncode != 0:
                raise RuntimeError(f"formatting {kraft_dir} failed:\n{fmt.stdout}{fmt.stderr}")
        with self.log_file.open("ab") as log:
            self._proc = subprocess.Popen(
                self._java("kafka.Kafka", str(config)),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.data_dir,
                # Own session, so a terminal's Ctrl-C reaches only our process,
                # which then stops the broker cleanly instead of racing it.
                start_new_session=True,
                # The only hook for PR_SET_PDEATHSIG; it makes just async-signal-safe calls.
                preexec_fn=die_with_parent(),  # noqa: PLW1509
            )

    def _tls_properties(self, tls: KafkaTls) -> str:
        return node_properties(
            TLS_PROPERTIES,
            listen_host="127.0.0.1",
            advertised_host="127.0.0.1",
            port=self.port,
            scram_port=self.scram_port,
            controller_port=self.controller_port,
            keystore=tls.broker_keystore,
            truststore=tls.ca_file,
            super_users=SUPER_USERS,
        )

    def cluster_id(self) -> str:
        """The id this broker's storage was formatted with."""
        for line in (self._kraft_dir / "meta.properties").read_text().splitlines():
            if line.startswith("cluster.id="):
                return line.split("=", 1)[1].strip()
        raise RuntimeError(f"{self._kraft_dir / 'meta.properties'} names no cluster.id")

    def wait_ready(self, timeout: float = 60) -> None:
        """Block until this broker answers metadata requests, or raise RuntimeError. Another broker
        answering on the same port (with another cluster id) does not count."""
        if self._proc is None:
            raise RuntimeError("broker was not started")
        deadline = time.monotonic() + timeout
        admin = admin_client(self.bootstrap, self.client_security)
        ours = self.cluster_id()
        while self._proc.poll() is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RuntimeError(f"broker on {self.bootstrap} not ready after {timeout}s; {self._tail()}")
            try:
                metadata = admin.list_topics(timeout=min(1.0, remaining))
                if metadata.brokers and metadata.cluster_id == ours:
                    return
            except KafkaException:
                pass
            time.sleep(_POLL_INTERVAL)
        raise RuntimeError(f"broker exited with code {self._proc.returncode} before ready; {self._tail()}")

    def stop(self, timeout: float = 30) -> None:
        """Clean shutdown (SIGTERM), escalating to SIGKILL after `timeout` seconds."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self.kill()

    def kill(self) -> None:
        """Crash the broker (SIGKILL), e.g. to test recovery; a no-op if it is not running."""
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.kill()
            self._proc.wait()
            self._proc = None

    def pause(self) -> None:
        """Freeze the broker (SIGSTOP): its connections stay open and nothing answers."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGCONT)

    def wipe(self) -> None:
        """Delete the stopped broker's logs and metadata: its next start formats a new cluster with empty
        logs, as a broker that lost its volume would."""
        if self.is_running:
            raise RuntimeError(f"broker on {self.bootstrap} is running; stop it before wiping its data")
        shutil.rmtree(self._kraft_dir, ignore_errors=True)

    def create_topic(self, name: str, partitions: int, timeout: float = 30) -> None:
        create_topic(self.bootstrap, name, partitions, timeout, security=self.client_security)

    def __enter__(self) -> KafkaBroker:
        self.start()
        try:
            self.wait_ready(120)  # a JVM's first start on a busy 2-core machine
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def create_topic(
    bootstrap: str,
    name: str,
    partitions: int,
    timeout: float = 30,
    replication_factor: int = 1,
    *,
    security: Mapping[str, Any] | None = None,
) -> None:
    """Create `name` (an existing one is fine) and wait until every partition has a leader."""
    deadline = time.monotonic() + timeout
    admin = admin_client(bootstrap, security)
    new = NewTopic(name, num_partitions=partitions, replication_factor=replication_factor)
    future = admin.create_topics([new], operation_timeout=timeout, request_timeout=timeout)[name]
    try:
        future.result(timeout)
    except KafkaException as e:
        if e.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
            raise
    while (remaining := deadline - time.monotonic()) > 0:
        try:
            topic = admin.list_topics(topic=name, timeout=min(1.0, remaining)).topics.get(name)
        except KafkaException:
            topic = None
        if topic is not None and topic.error is None:
            if len(topic.partitions) != partitions:
                raise RuntimeError(f"topic {name!r} has {len(topic.partitions)} partitions, not {partitions}")
            if all(p.leader >= 0 and p.error is None for p in topic.partitions.values()):
                return
        time.sleep(_POLL_INTERVAL)
    raise RuntimeError(f"topic {name!r}: partitions still without a leader after {timeout}s")
