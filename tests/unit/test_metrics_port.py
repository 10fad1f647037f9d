"""The ledger's metrics port: /metrics and the liveness /healthz, nothing else."""

from __future__ import annotations

import json

from prometheus_client import CollectorRegistry, Counter
from werkzeug.test import Client

from ledger_svc.ops.server import ops_app


def client() -> Client:
    registry = CollectorRegistry()
    Counter("ledger_example_total", "An example.", registry=registry).inc(3)
    return Client(ops_app(registry))


def test_metrics_and_liveness_are_served() -> None:
    metrics = client().get("/metrics")
    assert metrics.status_code == 200
    assert "ledger_example_total 3.0" in metrics.get_data(as_text=True)
    alive = client().get("/healthz")
    assert (alive.status_code, json.loads(alive.get_data())) == (200, {"status": "alive"})


def test_nothing_else_is() -> None:
    assert client().get("/v1/entries").status_code == 404
    assert client().post("/metrics").status_code == 405
