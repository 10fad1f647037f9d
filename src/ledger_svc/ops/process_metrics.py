"""CPU and memory of the whole ledger: supervisor, consumer, gunicorn master and workers.

prometheus_client's process collector reports a single process, and none at all in multiprocess mode,
while one ledger is several processes. The supervisor's children share its process group, so /metrics
sums over that group, read from /proc the way `ps` does.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
# Field positions in /proc/<pid>/stat after the ")" closing the command name (see proc(5)).
_PGRP, _UTIME, _STIME, _RSS = 2, 11, 12, 21


class ProcessGroupCollector(Collector):
    def __init__(self, proc: Path = Path("/proc"), process_group: int | None = None):
        self._proc = proc
        self._process_group = os.getpgid(0) if process_group is None else process_group

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        cpu_seconds = 0.0
        resident_bytes = 0
        processes = 0
        for fields in self._group_stats():
            cpu_seconds += (int(fields[_UTIME]) + int(fields[_STIME])) / _CLOCK_TICKS
            resident_bytes += int(fields[_RSS]) * _PAGE_SIZE
            processes += 1
        # A worker gunicorn replaces takes its CPU time with it; rate() reads the dip as a counter reset.
        yield CounterMetricFamily(
            "process_cpu_seconds", "CPU time of all the ledger's processes.", value=cpu_seconds
        )
        yield GaugeMetricFamily(
            "process_resident_memory_bytes",
            "Resident memory of all the ledger's processes.",
            value=resident_bytes,
        )
        yield GaugeMetricFamily(
            "ledger_processes", "Processes in the ledger's process group.", value=processes
        )

    def _group_stats(self) -> Iterator[list[str]]:
        for stat in self._proc.glob("[0-9]*/stat"):
            try:
                text = stat.read_text()
            except OSError:  # the process exited between the listing and the read
                continue
            fields = text[text.rindex(")") + 2 :].split()
            if int(fields[_PGRP]) == self._process_group:
                yield fields
