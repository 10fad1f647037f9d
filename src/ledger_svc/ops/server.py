"""The ledger's metrics port (distsum.ops_server), served by the supervisor beside its children rather
than by the REST workers: clients that stall the REST threads make the ledger unready (/readyz on the
REST port), never restart it with its consumer, because the liveness probe reads /healthz here.
/metrics merges every process's samples from the multiprocess directory, plus the CPU and memory of the
whole process group.
"""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector

from distsum import ops_server, tls
from ledger_svc.ops.backup_metrics import NewestBackupCollector
from ledger_svc.ops.process_metrics import ProcessGroupCollector


def serve(
    host: str, port: int, metrics_dir: Path, transport: tls.TlsSettings, backup_dir: Path | None = None
) -> None:
    """Serve the metrics port on a daemon thread, with the samples the processes write to metrics_dir
    (with TLS, the expiry of the certificate the REST workers serve; with a backup directory, its newest
    backup's age)."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(metrics_dir))  # type: ignore[no-untyped-call]  # untyped upstream
    registry.register(ProcessGroupCollector())
    if transport.enabled:
        registry.register(tls.CertificateExpiry(transport.cert_file))
    if backup_dir is not None:
        registry.register(NewestBackupCollector(backup_dir))
    ops_server.serve(host, port, registry)
