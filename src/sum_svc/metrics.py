"""Prometheus metrics of the sum service, served on their own HTTP port."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REQUESTS = Counter(
    "sum_grpc_requests_total", "gRPC requests handled, by method and status code.", ["method", "code"]
)
REQUEST_DURATION = Histogram(
    "sum_grpc_request_duration_seconds",
    "gRPC request latency, by method.",
    ["method"],
    buckets=LATENCY_BUCKETS,
)
IN_FLIGHT = Gauge("sum_grpc_requests_in_flight", "gRPC requests being handled, by method.", ["method"])
REFUSED = Counter(
    "sum_grpc_refused_total",
    "Calls refused before any work, by reason (in_flight_limit, permission_denied, unauthenticated).",
    ["reason"],
)
REPLAYS = Counter("sum_replays_total", "Add requests answered from the idempotency record.")
CONFLICTS = Counter(
    "sum_request_id_conflicts_total", "Add requests that reused a request_id with other operands."
)
PRODUCE_DURATION = Histogram(
    "sum_kafka_produce_duration_seconds",
    "Time from produce() to Kafka's delivery report.",
    buckets=LATENCY_BUCKETS,
)
PRODUCE_ERRORS = Counter(
    "sum_kafka_produce_errors_total", "Events Kafka did not acknowledge, by reason.", ["reason"]
)
PRODUCER_REPLACEMENTS = Counter(
    "sum_kafka_producer_replacements_total",
    "Kafka producers replaced by a new one, by reason (fatal_error, cluster_changed).",
    ["reason"],
)
POLLER_ERRORS = Counter(
    "sum_kafka_poller_errors_total",
    "Unexpected errors of the thread serving Kafka delivery reports (it logs each and carries on).",
)
KAFKA_REACHABLE = Gauge("sum_kafka_reachable", "1 while the last Kafka metadata probe succeeded.")
IDEMPOTENCY_ENTRIES = Gauge("sum_idempotency_entries", "Request ids held in the idempotency record.")
