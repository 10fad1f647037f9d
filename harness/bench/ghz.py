"""ghz (gRPC load, built by scripts/go-tool.sh) run once per measurement, its JSON report read back."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ADD = "distsum.v1.SumService.Add"
CHECK = "grpc.health.v1.Health.Check"
# Every call gets a fresh UUID. `a` is ghz's request number (0..n-1 within one run) and `b` names the
# run, so the entries show exactly which calls of which run were applied, whatever the request ids.
# int64 fields go in as JSON strings (the proto3 JSON form) so the template stays valid JSON.
_ADD_DATA = '{"request_id":"{{newUUID}}","a":"{{.RequestNumber}}","b":"%d"}'


class GhzFailed(RuntimeError):
    """ghz did not run to the end or printed no report: the measurement is void."""


@dataclass(frozen=True)
class GhzResult:
    call: str
    concurrency: int
    count: int
    ok: int
    status_codes: dict[str, int]
    seconds: float
    p50_ms: float
    p99_ms: float

    @property
    def rps(self) -> float:
        """Successful calls per second of the whole run (failed calls are load, not throughput)."""
        return self.ok / self.seconds if self.seconds > 0 else 0.0

    @property
    def failed(self) -> int:
        return self.count - self.ok


def add_data(run_id: int) -> str:
    return _ADD_DATA % run_id


def parse_report(report: dict[str, Any], call: str, concurrency: int) -> GhzResult:
    """The parts of ghz's `--format json` report that the bench uses. Durations there are nanoseconds;
    percentiles cover successful calls only (ghz leaves failed ones out of latencyDistribution)."""
    codes = {str(k): int(v) for k, v in (report.get("statusCodeDistribution") or {}).items()}
    percentiles = {
        int(d["percentage"]): int(d["latency"]) / 1e6 for d in report.get("latencyDistribution") or []
    }
    ok = codes.get("OK", 0)
    if ok and not {50, 99} <= percentiles.keys():
        raise GhzFailed(f"ghz report for {call} has no p50/p99 (latencyDistribution: {percentiles})")
    return GhzResult(
        call=call,
        concurrency=concurrency,
        count=int(report["count"]),
        ok=ok,
        status_codes=codes,
        seconds=int(report["total"]) / 1e9,
        p50_ms=percentiles.get(50, float("nan")),
        p99_ms=percentiles.get(99, float("nan")),
    )


@dataclass(frozen=True)
class ClientTls:
    """Mutual TLS for ghz: the CA that signed the server, and the client's certificate and key."""

    ca_file: Path
    cert_file: Path
    key_file: Path

    def ghz_args(self) -> list[str]:
        return ["--cacert", str(self.ca_file), "--cert", str(self.cert_file), "--key", str(self.key_file)]


def run(  # noqa: PLR0917 - one ghz command line, positional like ghz's own
    binary: Path,
    target: str,
    call: str,
    data: str,
    calls: int,
    concurrency: int,
    rps: int | None = None,
    tls: ClientTls | None = None,
) -> GhzResult:
    """One ghz run by server reflection (no .proto), over one connection, with mutual TLS or plaintext."""
    security = tls.ghz_args() if tls else ["--insecure"]
    argv = [str(binary), *security, "--call", call, "-d", data, "-n", str(calls)]
    argv += ["-c", str(concurrency), "--format", "json", "--timeout", "20s"]
    if rps is not None:
        argv += ["--rps", str(rps)]
    proc = subprocess.run([*argv, target], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise GhzFailed(
            f"ghz {call} -c {concurrency} exited {proc.returncode}: {proc.stderr.strip()[-2000:]}"
        )
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError as exc:
        raise GhzFailed(f"ghz {call} printed no JSON report ({exc}): {proc.stdout[:500]!r}") from None
    return parse_report(report, call, concurrency)
