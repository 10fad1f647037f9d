"""`make soak`: the local stack (3 Kafka nodes, two sum services, the ledger) under load and every fault
at once, then gRPC and REST fuzzing, all checked through the external contract.

Exit status: 0 when nothing was lost, double-counted, phantom or counted from a conflicting reuse, the
totals agree and the fuzzers found nothing; 1 otherwise (the results are written all the same); 2 on a
bad setting; 130 on Ctrl-C.
"""

from __future__ import annotations

import contextlib
import json
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaException

from distsum import settings as config
from distsum.clients.ledger import Entry, LedgerError, Total
from distsum.clients.waiting import WaitTimeout, wait_until
from ledger_svc.store.reader import LedgerReader
from localstack import results
from localstack.kafka_broker import ensure_kafka_libs
from localstack.stack import TOPIC, Ledger
from soak import checker, faults, fuzz, logscan, readback, report, stack
from soak.clients import Clients, LoadSettings
from soak.settings import SoakSettings

ROOT = Path(__file__).resolve().parents[2]
SETTLE_TIMEOUT = 300.0
# New requests a client may give up on (its 120 s of retries spent): none. Every fault here recovers in
# well under that (the slowest recovery a full soak has seen took 13 s), so an id never acknowledged means
# the stack stayed unavailable for two minutes, which is a failure, not an unknown outcome to tolerate.
UNKNOWN_OUTCOMES_ALLOWED = 0
PROGRESS_EVERY = 15.0
REST_FUZZ_TIMEOUT = 900.0


def progress() -> Callable[[str], None]:
    t0 = time.monotonic()

    def say(message: str) -> None:
        now = datetime.now().strftime("%H:%M:%S")
        print(f"==> {now} [{time.monotonic() - t0:5.0f} s] {message}", flush=True)

    return say


def _total_now(ledger: Ledger) -> Total | None:
    with contextlib.suppress(OSError, LedgerError):  # a ledger restarting answers again soon
        return ledger.client.total()
    return None


def _settle(soak: stack.Stack, wanted: set[str]) -> tuple[list[Entry], Total, str | None]:
    """Wait until every acknowledged id is applied and the ledger has consumed its log to the end offsets
    (which no longer move); then the whole outcome."""
    ledger = soak.ledger
    reader = readback.EntryReader(ledger.client)
    try:
        reader.wait_for(lambda: wanted, SETTLE_TIMEOUT)
    except RuntimeError as exc:  # the checker names them
        print(f"!! {exc}", file=sys.stderr, flush=True)
    store = LedgerReader(ledger.data_dir)
    try:
        readback.wait_consumed(
            lambda: store.next_offsets(TOPIC),
            lambda: readback.log_end_offsets(
                soak.cluster.bootstrap, TOPIC, security=soak.cluster.client_security
            ),
            SETTLE_TIMEOUT,
        )
    except RuntimeError as exc:  # the count the checker reads then says what is missing
        print(f"!! {exc}", file=sys.stderr, flush=True)
    total = wait_until(lambda: _total_now(ledger), SETTLE_TIMEOUT, "the ledger to answer its total")
    reader.read_new()
    # The file is replaced just after the commit the REST API shows; give it a moment to agree.
    with contextlib.suppress(WaitTimeout):  # a file that never agrees is the checker's to report
        ledger.wait_total_file(total["total"], 10)
    return reader.entries, total, ledger.total_file()


def _load(
    s: SoakSettings, soak: stack.Stack, stop: threading.Event, say: Callable[[str], None]
) -> dict[str, Any]:
    """Clients and faults at once; returns what they did (the clients' `sent` under "clients")."""
    seconds = s.minutes * 60
    rng = random.Random(s.seed)
    plan = faults.schedule(s.fault_counts(), seconds * 0.9, rng)
    load = LoadSettings(s.clients, s.requests, seconds, s.duplicate_share, s.conflict_share)
    clients = Clients([svc.target for svc in soak.sums], load, s.seed, stop)
    driver = faults.FaultDriver(soak, clients, plan, rng, stop, say)
    say(
        f"load: {s.requests} new requests from {s.clients} clients over {s.minutes:g} min, "
        f"{len(plan)} faults: " + ", ".join(f"{k} {n}" for k, n in s.fault_counts().items())
    )
    started = time.monotonic()
    clients.start()
    driver.start()
    deadline = started + max(seconds * 4, seconds + 900)
    next_progress = started + PROGRESS_EVERY
    while not (clients.done.is_set() and driver.finished.is_set()) and not stop.is_set():
        if time.monotonic() > deadline:
            raise RuntimeError(f"the load did not finish within {deadline - started:.0f} s")
        if time.monotonic() >= next_progress:
            next_progress += PROGRESS_EVERY
            say(
                f"sent {len(clients.sent)}/{s.requests} ids, acknowledged {clients.acknowledged}, "
                f"faults {len(driver.records)}/{len(plan)}"
            )
        time.sleep(0.5)
    driver.wait_finished(1.0)
    if stop.is_set():
        raise RuntimeError("stopped before the load finished")
    say(f"load done in {time.monotonic() - started:.0f} s: {clients.acknowledged} acknowledged")
    return {
        "clients": clients,
        "records": driver.records,
        "summary": {
            "new_requests": clients.counts["new"],
            "duplicates_sent": clients.counts["duplicate"],
            "conflicts_sent": clients.counts["conflict"],
            "outcomes": dict(sorted(clients.counts.items())),
            "attempts_by_status": dict(sorted(clients.codes.items())),
            "unknown_outcomes": clients.counts["new"] - clients.counts["new_OK"],
            "disallowed_answers": len(clients.disallowed),
            "disallowed_examples": clients.disallowed[:10],
            "longest_wait_for_ack_s": round(clients.longest_wait_for_ack, 2),
            "longest_gap_without_ack_s": round(clients.longest_gap_without_ack(driver.pauses), 2),
            "clients_held_s": round(sum(end - begin for begin, end in driver.pauses), 2),
            "load_seconds": round(time.monotonic() - started, 1),
        },
    }


def _rest_fuzz(url: str, examples: int, fuzz_seed: int) -> dict[str, Any]:
    """fuzz_rest in a child process with a memory cap and a deadline (see soak.fuzz.main)."""
    argv = [sys.executable, "-m", "soak.fuzz", url, str(examples), str(fuzz_seed)]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=REST_FUZZ_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        return {"requests": -1, "ok": False, "failures": [f"no result within {REST_FUZZ_TIMEOUT:.0f} s"]}
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        return {"requests": -1, "ok": False, "failures": [f"the fuzzer exited {done.returncode}:\n{tail}"]}
    parsed: dict[str, Any] = json.loads(lines[-1])
    return parsed


def _fuzz(  # noqa: PLR0917
    s: SoakSettings,
    soak: stack.Stack,
    clients: Clients,
    result: dict[str, Any],
    failures: list[str],
    say: Callable[[str], None],
) -> None:
    """gRPC fuzzing with the ledger checked again afterwards, then REST fuzzing; into `result`."""
    ledger = soak.ledger
    if s.grpc_fuzz_cases:
        say(f"gRPC fuzzing: {s.grpc_fuzz_cases} cases against {soak.sums[0].process.name}")
        g = fuzz.fuzz_grpc(soak.sums[0].target, s.grpc_fuzz_cases, s.seed)
        merged = {**clients.sent, **g.sent}
        wanted = {rid for rid, sent in merged.items() if sent.acknowledged}
        after = checker.check(merged, *_settle(soak, wanted))
        result["grpc_fuzz"] = {
            "cases": g.cases,
            "codes": dict(g.codes),
            "wrong": g.wrong,
            "accepted_ids": sum(1 for sent in g.sent.values() if sent.acknowledged),
            "check": report.verdict_dict(after),
            "check_ok": after.ok,
        }
        if not g.ok or not after.ok:
            failures.append("gRPC fuzzing: a wrong answer, INTERNAL/UNKNOWN, or a wrong count")
    if s.rest_fuzz_cases:
        say(f"REST fuzzing (schemathesis): up to {s.rest_fuzz_cases // 2} requests per operation and mode")
        result["rest_fuzz"] = _rest_fuzz(ledger.url, s.rest_fuzz_cases // 2, s.seed)
        if not result["rest_fuzz"]["ok"]:
            failures.append("REST fuzzing: responses the OpenAPI document does not allow (see rest_fuzz)")


def soak_run(
    s: SoakSettings,
    state: Path,
    say: Callable[[str], None],
    checkpoint: Callable[[dict[str, Any]], object] = lambda _: None,
) -> dict[str, Any]:
    """The whole run; returns the result document (its "ok" and "failures" say whether it passed)."""
    started, t0 = datetime.now(UTC), time.monotonic()
    libs = ensure_kafka_libs()
    stop = threading.Event()
    failures: list[str] = []
    result: dict[str, Any] = {
        "date": started.isoformat(timespec="seconds"),
        "seed": s.seed,
        "settings": s.model_dump(),
        "machine": results.machine(),
    }
    with contextlib.ExitStack() as resources:
        # Runs last on the way out (Ctrl-C included), after every process is stopped: the fault driver's
        # thread must live until then, or the processes it restarted die with it (PDEATHSIG).
        resources.callback(stop.set)
        say(f"seed {s.seed}; starting 3 Kafka nodes, two sum services and the ledger in {state}")
        soak = stack.start(resources, state, s.volume_mib)
        say(f"stack ready; the ledger's volume is a {soak.volume_note}")
        # What the services proved themselves to Kafka with (SSL: each its own client certificate).
        result["kafka_security"] = {p.name: p.env.get("KAFKA_SECURITY_PROTOCOL") for p in soak.processes()}
        done = _load(s, soak, stop, say)
        clients: Clients = done["clients"]
        say("waiting for the ledger to apply every acknowledged id and settle")
        entries, total, total_file = _settle(soak, clients.acknowledged_ids())
        verdict = checker.check(clients.sent, entries, total, total_file)
        result |= {
            "load": done["summary"],
            "check": report.verdict_dict(verdict),
            "faults": report.faults_summary(done["records"]),
            "fault_log": [r.as_dict() for r in done["records"]],
        }
        if not verdict.ok:
            failures.append("the ledger's outcome breaks the contract (see check)")
        if clients.disallowed:
            failures.append(f"{len(clients.disallowed)} answers the contract does not allow (see load)")
        if result["load"]["unknown_outcomes"] > UNKNOWN_OUTCOMES_ALLOWED:
            failures.append(
                f"{result['load']['unknown_outcomes']} new requests never acknowledged within the clients' "
                f"retries (at most {UNKNOWN_OUTCOMES_ALLOWED} allowed)"
            )
        say(
            f"checked: lost {verdict.lost}, duplicated {verdict.duplicated}, phantom {verdict.phantom}, "
            f"conflicts counted {verdict.conflicts_counted}"
        )
        windows = [(r.kind, r.wall_start, r.wall_end) for r in done["records"]]
        result["error_log_lines"] = logscan.scan(soak.logs(), windows)
        result["false_alarms"] = logscan.false_alarms(logscan.scan(soak.logs(), windows, logscan.alarm_lines))
        if result["false_alarms"]:
            failures.append("the ledger reported what no fault caused (see false_alarms)")
        checkpoint({**result, "ok": False, "failures": [*failures, "(fuzzing not finished yet)"]})

        try:
            _fuzz(s, soak, clients, result, failures, say)
        except Exception as exc:  # the load's results are kept, and the run fails
            failures.append(f"fuzzing stopped: {type(exc).__name__}: {exc}"[:2000])
    result |= {
        "ok": not failures,
        "failures": failures,
        "duration_s": round(time.monotonic() - t0, 1),
        "versions": results.stack_versions(libs),
        "git": results.git(ROOT),
    }
    return result


def main() -> int:
    try:
        s = config.load(SoakSettings)
    except config.ConfigurationError as exc:
        print(f"!! {exc}", file=sys.stderr)
        return 2
    # SIGTERM unwinds like Ctrl-C, so every process started is stopped on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    say = progress()
    state = ROOT / ".run" / "soak"
    try:
        result = soak_run(s, state, say, lambda partial: report.write(partial, keep=False))
    except (RuntimeError, AssertionError, KafkaException, OSError) as exc:
        print(f"!! soak failed: {exc}\n   seed {s.seed}; logs: {state / 'logs'}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # everything started is stopped by now
        print(f"!! interrupted (seed {s.seed})", file=sys.stderr)
        return 130
    written = report.write(result, s.keep)
    print(report.text(result))
    print("wrote " + ", ".join(str(p.relative_to(ROOT)) for p in written))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
