"""Error-level lines of the services' JSON logs, counted per fault kind: a line belongs to the fault whose
window (injection to recovery, plus a few seconds) holds its timestamp, else to `no_fault`. And false
alarms: lines that report something happening to the data where no fault caused it."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from pathlib import Path

ERROR_LEVELS = frozenset({"error", "critical"})

# Lines (by their start) that say something happened to the ledger's data, and the only fault kinds that
# make it happen: a log starting again only under log_restart; records deleted by retention never (the
# soak's topic keeps everything). Anywhere else the ledger alarms its operators falsely.
ALARMS: dict[str, frozenset[str]] = {
    "the Kafka log of a partition is not the one the store's offsets belong to": frozenset({"log_restart"}),
    "Kafka deleted records the ledger never read": frozenset(),
}


def error_lines(lines: Iterable[str]) -> list[tuple[float, str]]:
    """(epoch seconds, message) of each JSON line at error level or above; other lines are skipped."""
    return _select(lines, lambda level, _: level in ERROR_LEVELS)


def alarm_lines(lines: Iterable[str]) -> list[tuple[float, str]]:
    """(epoch seconds, message) of each JSON line, at any level, that starts like one of ALARMS."""
    return _select(lines, lambda _, message: message.startswith(tuple(ALARMS)))


def _select(lines: Iterable[str], wanted: Callable[[str, str], bool]) -> list[tuple[float, str]]:
    found = []
    for line in lines:
        if not line.startswith("{"):
            continue
        try:
            record = json.loads(line)
            level, ts = str(record.get("level", "")).lower(), record["ts"]
            when = datetime.fromisoformat(ts).timestamp()
        except (ValueError, KeyError, TypeError):
            continue
        message = str(record.get("msg", ""))
        if wanted(level, message):
            found.append((when, message))
    return found


def attribute(
    errors: Mapping[str, list[tuple[float, str]]], windows: list[tuple[str, float, float]]
) -> dict[str, dict[str, dict[str, int]]]:
    """fault kind (or no_fault) -> service -> message -> count, for `windows` of (kind, start, end)."""
    table: dict[str, dict[str, Counter[str]]] = defaultdict(lambda: defaultdict(Counter))
    for service, lines in errors.items():
        for when, message in lines:
            kind = next((k for k, start, end in windows if start <= when <= end), "no_fault")
            table[kind][service][message] += 1
    return {kind: {svc: dict(msgs) for svc, msgs in by_svc.items()} for kind, by_svc in table.items()}


def scan(
    logs: Mapping[str, Path],
    windows: list[tuple[str, float, float]],
    select: Callable[[Iterable[str]], list[tuple[float, str]]] = error_lines,
) -> dict[str, dict[str, dict[str, int]]]:
    """The lines `select` picks from each service's log, attributed to fault kinds."""
    found = {}
    for service, path in logs.items():
        try:
            found[service] = select(path.read_text(errors="replace").splitlines())
        except OSError:
            found[service] = []
    return attribute(found, windows)


def false_alarms(alarms: Mapping[str, Mapping[str, Mapping[str, int]]]) -> dict[str, dict[str, int]]:
    """From scan(..., alarm_lines): "fault kind / service" -> message -> count, of the alarm lines
    outside the fault kinds that cause them."""
    false: dict[str, dict[str, int]] = {}
    for kind, by_service in alarms.items():
        for service, messages in by_service.items():
            for message, count in messages.items():
                allowed = next(kinds for start, kinds in ALARMS.items() if message.startswith(start))
                if kind not in allowed:
                    false.setdefault(f"{kind} / {service}", {})[message] = count
    return false
