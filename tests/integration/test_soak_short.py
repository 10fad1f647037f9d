"""A short `make soak`: the same code path (3 Kafka nodes, two sum services, the ledger, clients with
duplicates and conflicting reuses, every fault kind, gRPC fuzzing, the checker) with small numbers, so
it fits in `make test` (about 2-3 minutes). SOAK_SEED replays a run; the seed is printed on failure."""

from __future__ import annotations

from pathlib import Path

from soak.run import progress, soak_run
from soak.settings import SoakSettings

SHORT = {
    "requests": 3000,
    "minutes": 1.25,
    "clients": 12,
    "sum_kills": 2,
    "ledger_kills": 2,
    "consumer_kills": 1,
    "broker_kills": 1,
    "full_volumes": 1,
    "log_restarts": 1,
    "sum_pauses": 1,
    "consumer_pauses": 1,
    "broker_pauses": 1,  # the ledger group's coordinator
    "grpc_fuzz_cases": 300,
    "rest_fuzz_cases": 0,  # tests/integration/test_rest_fuzz.py covers the REST API in make test
    "volume_mib": 64,
}


def test_a_short_soak_loses_nothing_and_counts_nothing_twice(tmp_path: Path) -> None:
    settings = SoakSettings(**SHORT)  # type: ignore[arg-type]
    print(f"SOAK_SEED={settings.seed}")

    result = soak_run(settings, tmp_path / "soak", progress())

    check, faults = result["check"], result["faults"]
    summary = {k: check[k] for k in ("lost", "duplicated", "phantom", "conflicts_counted")}
    assert summary == dict.fromkeys(summary, 0), (settings.seed, check["examples"])
    assert check["total_matches_entries"] and check["total_file_matches"], check
    assert check["acknowledged"] == check["sent_ids"] == SHORT["requests"], check
    assert result["load"]["disallowed_answers"] == 0, result["load"]["disallowed_examples"]
    # Measured in the secure configuration: every service connected with its own client certificate.
    assert result["kafka_security"] == {"sum-svc-1": "SSL", "sum-svc-2": "SSL", "ledger": "SSL"}
    assert {kind: f["count"] for kind, f in faults.items()} == {
        "sum_kill": 2,
        "ledger_kill": 2,
        "consumer_kill": 1,
        "broker_kill": 1,
        "full_volume": 1,
        "log_restart": 1,
        "sum_pause": 1,
        "consumer_pause": 1,
        "broker_pause": 1,
    }
    assert result["load"]["conflicts_sent"] > 0 and result["load"]["duplicates_sent"] > 0
    assert result["grpc_fuzz"]["cases"] >= SHORT["grpc_fuzz_cases"] and result["grpc_fuzz"]["check_ok"]
    assert result["ok"], result["failures"]
