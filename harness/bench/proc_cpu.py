"""CPU time of a service's process group, from /proc, the way `ps` and the ledger's own metrics read it.

Every service the bench starts leads its own session (localstack's ManagedProcess), so its process group
holds all of it: the sum service's one process with its threads, or the ledger's supervisor, consumer
and gunicorn workers. utime + stime in /proc/<pid>/stat already include every thread.
"""

from __future__ import annotations

import os
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# Field positions in /proc/<pid>/stat after the ")" that closes the command name (see proc(5)).
_PGRP, _UTIME, _STIME = 2, 11, 12


def stat_ticks(stat_line: str) -> tuple[int, int]:
    """(process group, utime + stime in clock ticks) of one /proc/<pid>/stat line. The command name
    may hold spaces and parentheses, so fields are counted from the last ")"."""
    fields = stat_line[stat_line.rindex(")") + 2 :].split()
    return int(fields[_PGRP]), int(fields[_UTIME]) + int(fields[_STIME])


def group_ticks(process_group: int, proc: Path = Path("/proc")) -> int:
    """CPU clock ticks used so far by the live processes of one process group."""
    total = 0
    for stat in proc.glob("[0-9]*/stat"):
        try:
            group, ticks = stat_ticks(stat.read_text())
        except (OSError, ValueError):  # exited between the listing and the read
            continue
        if group == process_group:
            total += ticks
    return total
