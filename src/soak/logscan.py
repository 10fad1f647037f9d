"""Error-level lines of the services' JSON logs, counted per fault kind: a line belongs to the fault whose
window (injection to recovery, plus a few seconds) holds its timestamp, else to `no_fault`."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path

ERROR_LEVELS = frozenset({"error", "critical"})


def error_lines(lines: Iterable[str]) -> list[tuple[float, str]]:
    """(epoch seconds, message) of each JSON line at error level or above; other lines are skipped."""
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
        if level in ERROR_LEVELS:
            found.append((when, str(record.get("msg", ""))))
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
    logs: Mapping[str, Path], windows: list[tuple[str, float, float]]
) -> dict[str, dict[str, dict[str, int]]]:
    errors = {}
    for service, path in logs.items():
        try:
            errors[service] = error_lines(path.read_text(errors="replace").splitlines())
        except OSError:
            errors[service] = []
    return attribute(errors, windows)
