"""The restore drill on the real cluster: a backup of the running ledger taken the way the runbook says
(a Job from the chart's CronJob, on the ledger's node, against its ReadWriteOnce volume), Prometheus
seeing it, then the ledger's volume lost and the backup restored by `helm upgrade --set
ledger.backup.restoreFrom=...`: the restored ledger catches up from Kafka and every id sent before and
after the backup is applied exactly once. The module sorts last: it replaces the ledger's volume."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import grpc

from distsum.clients.ledger import LedgerClient
from distsum.clients.waiting import wait_until
from tests.e2e.conftest import PROMETHEUS_NAMESPACE, PROMETHEUS_SERVICE, Release
from tests.e2e.kube import (
    Settings,
    job_logs,
    port_forward,
    prometheus_api,
    run,
    service_with_port,
    wait_job_complete,
)
from tests.e2e.ledger_audit import audit_applied
from tests.e2e.tls_clients import ClientCertificate
from tests.services import new_id

ADDS = 300
RETRIABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}


def add(operator: ClientCertificate, target: str, first: int) -> dict[str, int]:
    """ADDS Adds, each retried with its id until acknowledged; the acknowledged sums by id."""
    with operator.sum_client(target) as client:

        def one(value: int) -> tuple[str, int]:
            request_id, deadline = new_id(), time.monotonic() + 120
            while True:
                try:
                    return request_id, client.add(request_id, value, 1, timeout=10).sum
                except grpc.RpcError as error:
                    if error.code() not in RETRIABLE or time.monotonic() > deadline:
                        raise

        with ThreadPoolExecutor(8) as pool:
            return dict(pool.map(one, range(first, first + ADDS)))


@contextmanager
def services(core: Any, settings: Settings, release: Release) -> Iterator[tuple[str, str]]:
    """(sum target, ledger address) through port-forwards."""
    namespace, name = release.namespace, release.name
    with (
        port_forward(
            settings, namespace, service_with_port(core, namespace, name, 50051), 50051
        ) as sum_target,
        port_forward(settings, namespace, service_with_port(core, namespace, name, 8080), 8080) as ledger,
    ):
        yield sum_target, ledger


def take_backup(batch: Any, core: Any, settings: Settings, release: Release) -> dict[str, Any]:
    """A backup now, as docs/runbooks.md says: a Job from the CronJob. What its log says it took."""
    job = f"backup-now-{uuid.uuid4().hex[:6]}"
    cron = f"{release.name}-distributed-sum-ledger-backup"
    run(settings.kubectl, "--context", settings.context, "-n", release.namespace,
        "create", "job", f"--from=cronjob/{cron}", job)  # fmt: skip
    try:
        wait_job_complete(batch, core, release.namespace, job, 300)
        log = job_logs(core, release.namespace, job)
    finally:
        # Gone with its pod, which would otherwise count among the release's pods in later tests.
        batch.delete_namespaced_job(job, release.namespace, propagation_policy="Foreground")
        wait_until(
            lambda: job not in {j.metadata.name for j in batch.list_namespaced_job(release.namespace).items},
            120,
            f"job {job} to be deleted",
            1.0,
        )
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    (taken,) = [line for line in lines if line.get("msg") == "backup taken"]
    return dict(taken)


def ledger_backups(settings: Settings, namespace: str) -> float:
    with port_forward(settings, PROMETHEUS_NAMESPACE, f"svc/{PROMETHEUS_SERVICE}", 9090) as prometheus:

        def reported() -> float | None:
            result = prometheus_api(
                f"http://{prometheus}", "query", query=f'ledger_backups{{namespace="{namespace}"}}'
            )
            values = [float(sample["value"][1]) for sample in result["result"]]
            return max(values) if values and max(values) >= 1 else None

        found: float = wait_until(reported, 180, "Prometheus to see the ledger's backup", 2.0)
    return found


def lose_the_ledger_volume(apps: Any, core: Any, release: Release) -> None:
    """Scale the ledger to zero and delete its claim (its volume goes with it)."""
    (statefulset,) = apps.list_namespaced_stateful_set(
        release.namespace, label_selector=release.selector("ledger")
    ).items
    name = statefulset.metadata.name
    apps.patch_namespaced_stateful_set_scale(name, release.namespace, {"spec": {"replicas": 0}})
    wait_until(
        lambda: (
            not core.list_namespaced_pod(release.namespace, label_selector=release.selector("ledger")).items
        ),
        120,
        "the ledger pod to be gone",
        1.0,
    )
    claim = f"data-{name}-0"
    core.delete_namespaced_persistent_volume_claim(claim, release.namespace)
    wait_until(
        lambda: (
            claim
            not in {
                c.metadata.name for c in core.list_namespaced_persistent_volume_claim(release.namespace).items
            }
        ),
        120,
        f"the claim {claim} to be deleted",
        1.0,
    )


def test_a_backup_restores_onto_a_lost_ledger_volume_and_catches_up_exactly(
    *, apps: Any, batch: Any, core: Any, settings: Settings, release: Release, operator: ClientCertificate
) -> None:
    with services(core, settings, release) as (sum_target, ledger):
        before = add(operator, sum_target, 0)
        audit_applied(operator.ledger(ledger), before)
    taken = take_backup(batch, core, settings, release)
    assert taken["count"] >= ADDS, taken
    assert ledger_backups(settings, release.namespace) >= 1
    with services(core, settings, release) as (sum_target, ledger):
        after = add(operator, sum_target, ADDS)
        counted = audit_applied(operator.ledger(ledger), after)
    assert counted["count"] > taken["count"]

    lose_the_ledger_volume(apps, core, release)
    backup_file = taken["backup"].rsplit("/", 1)[-1]
    restored = release.upgrade(settings, f"ledger.backup.restoreFrom={backup_file}", wait=True)
    assert restored.returncode == 0, restored.stderr
    (pod,) = core.list_namespaced_pod(release.namespace, label_selector=release.selector("ledger")).items
    restore_log = [
        json.loads(line)
        for line in core.read_namespaced_pod_log(
            pod.metadata.name, release.namespace, container="restore"
        ).splitlines()
        if line.startswith("{")
    ]
    (done,) = [line for line in restore_log if line.get("msg", "").startswith("backup restored")]
    assert sum(done["records_to_catch_up"].values()) >= ADDS, done
    with services(core, settings, release) as (_, ledger):
        client: LedgerClient = operator.ledger(ledger)
        total = audit_applied(client, {**before, **after})
    assert total["count"] == counted["count"]

    # Left set, the value does nothing; cleared, the ledger rolls once more on its restored volume.
    cleared = release.upgrade(settings, "ledger.backup.restoreFrom=", wait=True)
    assert cleared.returncode == 0, cleared.stderr
    with services(core, settings, release) as (_, ledger):
        assert audit_applied(operator.ledger(ledger), {**before, **after}) == total
