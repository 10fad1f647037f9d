"""The result files of `make bench` and `make soak`: their names, and where and with what a run ran (machine,
versions and revision) for the JSON beside the numbers."""

from __future__ import annotations

import itertools
import os
import platform
import re
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import confluent_kafka


def _first(path: str, pattern: str) -> str | None:
    try:
        match = re.search(pattern, Path(path).read_text(), re.MULTILINE)
    except OSError:
        return None
    return match.group(1).strip() if match else None


def _output(argv: list[str], cwd: Path | None = None) -> str:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, check=False, cwd=cwd, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unknown ({exc})"
    if proc.returncode != 0:
        return "unknown"
    # java prints its version on stderr.
    lines = (proc.stdout or proc.stderr).strip().splitlines()
    return lines[0] if lines else ""


def machine() -> dict[str, Any]:
    mem_kib = _first("/proc/meminfo", r"^MemTotal:\s+(\d+)")
    return {
        "cpu_model": _first("/proc/cpuinfo", r"^model name\s*:(.*)$") or platform.processor() or "unknown",
        "cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "memory_gib": round(int(mem_kib) / 2**20, 1) if mem_kib else None,
        "kernel": platform.release(),
        "load_average_at_start": list(os.getloadavg()),
    }


def stack_versions(kafka_libs: Path) -> dict[str, Any]:
    """The versions of what the local stack runs on (shared with make soak)."""
    server_jars = sorted(kafka_libs.glob("kafka-server-[0-9]*.jar"))
    return {
        "python": platform.python_version(),
        "grpcio": metadata.version("grpcio"),
        "protobuf": metadata.version("protobuf"),
        "confluent_kafka": metadata.version("confluent-kafka"),
        "librdkafka": confluent_kafka.libversion()[0],
        "kafka_broker": server_jars[-1].stem.removeprefix("kafka-server-") if server_jars else "unknown",
        "java": _output(["java", "-version"]),
    }


def versions(ghz: Path, kafka_libs: Path) -> dict[str, Any]:
    return {
        **stack_versions(kafka_libs),
        "ghz": _output([str(ghz), "--version"]),
        "matplotlib": metadata.version("matplotlib"),
    }


def git(repo: Path) -> dict[str, Any]:
    return {
        "revision": _output(["git", "rev-parse", "HEAD"], repo),
        "dirty": _output(["git", "status", "--porcelain", "--untracked-files=no"], repo)
        not in ("", "unknown"),
    }


def result_stems(results: Path, date: str, keep: bool) -> list[str]:
    """File stems to write a run's results under: "latest", and with keep the run's day, made unique
    with -2, -3, ... for more runs that day."""
    if not keep:
        return ["latest"]
    day = date[:10]
    suffixes = itertools.chain([""], (f"-{i}" for i in itertools.count(2)))
    dated = next(f"{day}{n}" for n in suffixes if not (results / f"{day}{n}.json").exists())
    return ["latest", dated]
