"""How old the ledger's newest backup is, for the alert that fires before Kafka's retention would leave a
restore unable to catch up: read at each scrape from LEDGER_BACKUP_DIR (names only, no file opened)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from ledger_svc.backup.snapshot import list_backups, taken_at_of


class NewestBackupCollector(Collector):
    def __init__(self, backup_dir: Path, started: float | None = None):
        self._backup_dir = backup_dir
        self._started = time.time() if started is None else started

    def collect(self) -> Iterator[GaugeMetricFamily]:
        stamps = [t.timestamp() for p in list_backups(self._backup_dir) if (t := taken_at_of(p)) is not None]
        yield GaugeMetricFamily(
            "ledger_backup_newest_timestamp_seconds",
            "When the newest backup in LEDGER_BACKUP_DIR was taken; while there is none, when the ledger"
            " started (so a ledger that never got a backup ages too).",
            value=max(stamps, default=self._started),
        )
        yield GaugeMetricFamily("ledger_backups", "Backups in LEDGER_BACKUP_DIR.", value=len(stamps))
