"""One real stack on the session's broker and one real Prometheus per module, scraping every second."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from distsum.clients.waiting import wait_until
from localstack.kafka_broker import KafkaBroker
from localstack.ports import free_port
from tests.conftest import make_topic
from tests.promql.prometheus import PrometheusServer, Target, prometheus_bin_dir, rule_groups
from tests.promql.stack import Expected, drive_traffic, running_stack

# A process in the same namespace that is none of ours: Prometheus scraping itself under made-up labels.
DECOY_POD = "unrelated-exporter-0"
# The ledger's REST reads of its total, as its REST latency histogram counts them.
TOTAL_READS = 'flask_http_request_duration_seconds_count{url_rule="/v1/total"}'


@pytest.fixture(scope="module")
def prometheus_bin() -> Path:
    return prometheus_bin_dir()


@pytest.fixture(scope="module")
def groups() -> list[dict[str, Any]]:
    return rule_groups()


def _value(server: PrometheusServer, expr: str) -> float:
    result = server.query(expr)
    return float(result[0]["value"][1]) if result else 0.0


def _wait_for_counters(server: PrometheusServer, expected: Expected) -> None:
    """Prometheus has scraped what the traffic left behind."""
    floors = {
        "sum(ledger_events_applied_total)": expected.count,
        "sum(ledger_poison_messages_total)": expected.dead_letters,
        "sum(ledger_duplicates_skipped_total)": expected.ledger_duplicates,
        "sum(ledger_request_id_conflicts_total)": expected.ledger_conflicts,
        f"sum({TOTAL_READS})": expected.rest_reads,
    }

    def scraped() -> bool:
        return all(_value(server, expr) >= floor for expr, floor in floors.items())

    wait_until(scraped, 60, f"Prometheus to scrape {floors}", 0.5)


def _wait_for_warm_up_series(server: PrometheusServer) -> None:
    """Both replicas' OK, ALREADY_EXISTS, INVALID_ARGUMENT and OUT_OF_RANGE series and the ledger's
    /v1/total series are scraped. Each target is scraped on its own schedule, so the sum services'
    scrape says nothing of the ledger's: the REST reads after the warm-up can all fall before the
    ledger's next scrape (they span about a second), which then takes the series' first sample with
    every read already counted, and the REST latency quantile stays NaN."""
    adds = 'count(sum_grpc_requests_total{method="/distsum.v1.SumService/Add"})'
    wait_until(lambda: _value(server, adds) == 8, 30, "Prometheus to scrape every Add status series", 0.2)
    wait_until(
        lambda: _value(server, TOTAL_READS) >= 1, 30, "Prometheus to scrape the ledger's REST series", 0.2
    )


@pytest.fixture(scope="module")
def prometheus(
    prometheus_bin: Path,
    groups: list[dict[str, Any]],
    broker: KafkaBroker,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[PrometheusServer]:
    work_dir = tmp_path_factory.mktemp("promql")
    with running_stack(make_topic(broker), work_dir / "stack") as stack:
        port = free_port()
        targets = [*stack.targets, Target(port, "unrelated", DECOY_POD, "prometheus", "web")]
        with PrometheusServer(prometheus_bin, work_dir / "prometheus", port, targets, groups) as server:
            # Scraped before the traffic, so every counter's increase falls inside the stored samples.
            wait_until(
                lambda: _value(server, "count(up == 1)") == len(targets), 60, "every target to be up", 0.2
            )
            _wait_for_counters(server, drive_traffic(stack, lambda: _wait_for_warm_up_series(server)))
            yield server
