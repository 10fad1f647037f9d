"""The PNG: rps and p99 latency against concurrency, Add beside Health/Check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: files only
import matplotlib.pyplot as plt


def plot(result: dict[str, Any], path: Path) -> None:
    rows = result["by_concurrency"]
    concurrency = [row["concurrency"] for row in rows]
    fig, (rps_ax, p99_ax) = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
    for call, style in (("add", "o-"), ("check", "s--")):
        label = "Add (acked by Kafka)" if call == "add" else "Health/Check (bare gRPC)"
        rps_ax.plot(concurrency, [row[call]["rps"] for row in rows], style, label=label)
        p99_ax.plot(concurrency, [row[call]["p99_ms"] for row in rows], style, label=label)
    for ax, title, unit in ((rps_ax, "throughput", "calls/s"), (p99_ax, "p99 latency", "ms")):
        ax.set_xscale("log")
        ax.set_xticks(concurrency, [str(c) for c in concurrency])
        ax.set_xlabel("concurrency (ghz -c)")
        ax.set_ylabel(unit)
        ax.set_title(title)
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.suptitle(f"make bench {result['date']} ({result['git']['revision'][:12]})")
    fig.savefig(path, dpi=100)
    plt.close(fig)
