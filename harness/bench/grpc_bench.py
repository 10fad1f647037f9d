"""ghz runs against one sum service with every actor's CPU read around each (bench.actors), and the cost
of one link's security measured as two services of one stack in turns."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench import actors, audit, ghz, report
from bench.actors import Actors
from bench.progress import say
from bench.settings import BenchSettings

WARMUP_CALLS = 1000


class GrpcBench:
    """ghz runs against one sum service, with the CPU of every actor read around each run (actors).
    Benches of one stack share `sent` (and the run ids), which the ledger's entries are audited against."""

    def __init__(  # noqa: PLR0917 - the service measured, then what the benches of a stack share
        self,
        binary: Path,
        target: str,
        actors: Actors,
        tls: ghz.ClientTls | None,
        sent: list[audit.SentRun],
        run_ids: Iterator[int],
    ):
        self.binary, self.target, self.actors, self.tls = binary, target, actors, tls
        self.sent, self.run_ids = sent, run_ids
        self.runs: list[dict[str, Any]] = []

    def call(
        self, method: str, calls: int, concurrency: int, rps: int | None = None
    ) -> tuple[ghz.GhzResult, dict[str, float]]:
        """One ghz run; its result and each actor's CPU ms per call (the service's under "service")."""
        data = "{}"
        if method == ghz.ADD:
            run_id = next(self.run_ids)
            data = ghz.add_data(run_id)
        before = self.actors.read()
        result = ghz.run(self.binary, self.target, method, data, calls, concurrency, rps, self.tls)
        cpu = actors.ms_per_call(before, self.actors.read(), result.count)
        if method == ghz.ADD:
            self.sent.append(audit.SentRun(run_id, result.count, result.ok))
        return result, cpu

    def measure(self, s: BenchSettings) -> list[dict[str, Any]]:
        """Every concurrency, `rounds` times each call. Add and Check alternate which goes first, so a
        drift of the machine weighs on both alike."""
        self.call(ghz.CHECK, WARMUP_CALLS, 10)
        self.call(ghz.ADD, WARMUP_CALLS, 10)
        rows = []
        for concurrency in s.concurrency:
            measured: dict[str, list[tuple[ghz.GhzResult, dict[str, float]]]] = {ghz.ADD: [], ghz.CHECK: []}
            for round_ in range(s.rounds):
                for method in (ghz.CHECK, ghz.ADD) if round_ % 2 == 0 else (ghz.ADD, ghz.CHECK):
                    result, cpu = self.call(method, s.calls_per_run, concurrency)
                    measured[method].append((result, cpu))
                    self.runs.append(
                        {
                            **run_json(result),
                            "cpu_ms_per_call": cpu["service"],
                            "actors": cpu,
                            "round": round_ + 1,
                        }
                    )
                    say(
                        f"{method} c={concurrency} round {round_ + 1}: {result.rps:,.0f} rps, "
                        f"p99 {result.p99_ms:.1f} ms, {cpu['service']:.3f} CPU ms/call "
                        f"(system {cpu['system']:.3f}), {result.failed} failed"
                    )
            rows.append(
                {
                    "concurrency": concurrency,
                    "add": report.summarize(
                        [r for r, _ in measured[ghz.ADD]], [c for _, c in measured[ghz.ADD]]
                    ),
                    "check": report.summarize(
                        [r for r, _ in measured[ghz.CHECK]], [c for _, c in measured[ghz.CHECK]]
                    ),
                }
            )
        return rows

    def pooled_cpu_ms(self, method: str) -> float:
        runs = [r for r in self.runs if r["call"] == method]
        cpu_ms: float = sum(r["cpu_ms_per_call"] * r["count"] for r in runs)
        calls: int = sum(r["count"] for r in runs)
        return cpu_ms / calls


def security_cost(secured: GrpcBench, plaintext: GrpcBench, s: BenchSettings) -> dict[str, Any]:
    """Add at the headline concurrency on two sum services of one run that differ in one link's
    security, alternating which goes first each round so that a drift of the machine weighs on both
    alike. Keys `tls` (secured) and `plaintext`, and the ratios of the first to the second."""
    benches = {"tls": secured, "plaintext": plaintext}
    measured: dict[str, list[tuple[ghz.GhzResult, dict[str, float]]]] = {name: [] for name in benches}
    plaintext.call(ghz.ADD, WARMUP_CALLS, 10)
    for round_ in range(s.rounds):
        for name in ("tls", "plaintext") if round_ % 2 == 0 else ("plaintext", "tls"):
            result, cpu = benches[name].call(ghz.ADD, s.calls_per_run, report.HEADLINE_CONCURRENCY)
            measured[name].append((result, cpu))
            say(
                f"Add with {name} round {round_ + 1}: {result.rps:,.0f} rps, {cpu['service']:.3f} CPU ms/call"
            )
    summary = {
        name: report.summarize([r for r, _ in runs], [c for _, c in runs]) for name, runs in measured.items()
    }
    return {
        **summary,
        "rps_ratio": summary["tls"]["rps"] / summary["plaintext"]["rps"],
        "cpu_ratio": summary["tls"]["cpu_ms_per_call"] / summary["plaintext"]["cpu_ms_per_call"],
    }


def run_json(result: ghz.GhzResult) -> dict[str, Any]:
    return {
        "call": result.call,
        "concurrency": result.concurrency,
        "count": result.count,
        "ok": result.ok,
        "status_codes": result.status_codes,
        "seconds": result.seconds,
        "rps": result.rps,
        "p50_ms": result.p50_ms,
        "p99_ms": result.p99_ms,
    }
