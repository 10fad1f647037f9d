"""The soak's stack, from localstack: a 3-node KRaft cluster locked down (TLS, a client certificate per
service, ACLs), two sum services and the ledger, on ports that stay theirs (so a killed process comes
back where its clients look for it) and in a state directory of its own. The ledger's volume is a small
tmpfs when this machine allows mounting one, so it can be filled up."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from localstack.certificates import KafkaTls
from localstack.kafka_cluster import KafkaCluster
from localstack.processes import ManagedProcess
from localstack.stack import QUICK_RECOVERY, Ledger, SumService, local_stack

PARTITIONS = 6
LEDGER_GROUP = "distsum-soak"
START_TIMEOUT = 90.0


@dataclass
class Stack:
    cluster: KafkaCluster
    sums: list[SumService]
    ledger: Ledger
    volume_note: str  # what the ledger's volume is, or why it is a plain directory

    def processes(self) -> list[ManagedProcess]:
        return [*(s.process for s in self.sums), self.ledger.process]

    def logs(self) -> dict[str, Path]:
        return {p.name: p.log_path for p in self.processes()}


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


def start(resources: contextlib.ExitStack, state: Path, volume_mib: int) -> Stack:
    """Everything up and ready; every process (and the mount) is undone when `resources` closes."""
    shutil.rmtree(state, ignore_errors=True)
    state.mkdir(parents=True)
    # Kafka locked down as the chart runs it: the guarantees are measured in the secure configuration.
    kafka_tls = KafkaTls(state / "kafka-tls")
    local = resources.enter_context(
        local_stack(
            state, kafka_nodes=3, partitions=PARTITIONS, service_env=QUICK_RECOVERY, kafka_tls=kafka_tls
        )
    )
    assert isinstance(local.kafka, KafkaCluster)
    sums = [local.sum_service(f"sum-svc-{n}", wait=False) for n in (1, 2)]

    data_dir = state / "ledger-data"
    data_dir.mkdir()
    note = _mount_tmpfs(data_dir, volume_mib)
    if is_tmpfs(note):
        # Registered before the ledger starts, so the ledger stops first (last in, first out).
        local.resources.callback(subprocess.run, ["umount", "-l", str(data_dir)], check=False)
    ledger = local.ledger(
        "ledger",
        data_dir=data_dir,
        wait=False,
        env={
            "LEDGER_GROUP_ID": LEDGER_GROUP,
            "LEDGER_GROUP_INSTANCE_ID": "soak-ledger",
            "LEDGER_LOG_CHECK_INTERVAL_SECONDS": "2",
        },
    )
    for service in sums:
        service.wait_status("SERVING", START_TIMEOUT)
    ledger.wait_ready(START_TIMEOUT)
    return Stack(local.kafka, sums, ledger, note)
