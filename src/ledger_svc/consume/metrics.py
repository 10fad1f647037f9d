"""Ledger metrics. Import only with PROMETHEUS_MULTIPROC_DIR set: the consumer and the
gunicorn workers write to one directory and /metrics aggregates them."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from ledger_svc.domain.incarnation import RESTART_REASONS

EVENTS_APPLIED = Counter("ledger_events_applied_total", "Events added to the total.")
DUPLICATES_SKIPPED = Counter(
    "ledger_duplicates_skipped_total", "Events whose request_id was already applied."
)
CONFLICTS = Counter(
    "ledger_request_id_conflicts_total",
    "Events reusing an applied request_id with other operands (not counted).",
)
POISON_MESSAGES = Counter(
    "ledger_poison_messages_total", "Undecodable or invalid records sent to the dead-letter topic."
)
WRITE_FAILURES = Counter(
    "ledger_store_write_failures_total",
    "Batches (dead letters, commit or total file) that failed and will be retried.",
)
BATCH_COMMIT_DURATION = Histogram(
    "ledger_batch_commit_duration_seconds",
    "Time to commit one consumed batch to the store.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
QUEUE_LATENCY = Histogram(
    "ledger_queue_latency_seconds",
    "Time from the sum service producing an event to the ledger committing it.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)
CONSUMER_LAG = Gauge(
    "ledger_consumer_lag",
    "Records in the partition not yet committed to the store.",
    ["partition"],
    multiprocess_mode="livemax",
)
TOTAL = Gauge(
    "ledger_total", "The running total (a float: exact value at /v1/total).", multiprocess_mode="livemax"
)
COUNT = Gauge("ledger_events_count", "Events applied to the total so far.", multiprocess_mode="livemax")
STORE_WRITABLE = Gauge(
    "ledger_store_writable", "1 while batches commit to the store.", multiprocess_mode="livemax"
)
LOG_RESTARTS = Counter(
    "ledger_log_restarts_total",
    "Partitions read again from the start because their Kafka log is not the one the store's offsets"
    " belong to (the broker lost its data, or the topic was created again).",
    ["reason"],
)
for _reason in RESTART_REASONS:  # every series exists from the start, so increase() sees the first one
    LOG_RESTARTS.labels(reason=_reason)
PARTITIONS_UNVERIFIED = Gauge(
    "ledger_partitions_unverified",
    "Assigned partitions held paused until Kafka shows which log it serves.",
    multiprocess_mode="livemax",
)
CONSUMER_REJOINS = Counter(
    "ledger_consumer_rejoins_total",
    "Times the consumer was replaced to rejoin its group after LEDGER_REJOIN_AFTER_SECONDS subscribed"
    " without partitions.",
)
CONSUMER_OWN_FENCES = Counter(
    "ledger_consumer_own_fences_total",
    "Times the consumer was fenced by a join of its own that Kafka processed late (after a coordinator"
    " stall: the member it made was dropped within the session timeout) and was replaced; a fence by a"
    " member that lives on ends the consumer process.",
)
CONSUMER_CLOSE_TIMEOUTS = Counter(
    "ledger_consumer_close_timeouts_total",
    "Kafka consumers (replaced, or at shutdown) that did not close within"
    " LEDGER_CONSUMER_CLOSE_TIMEOUT_SECONDS and were left to close in the background.",
)
