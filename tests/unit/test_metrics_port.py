"""The services' metrics port: /metrics, and /healthz and /readyz for the probes; nothing else."""

from __future__ import annotations

import json
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter
from werkzeug.test import Client

from distsum.ops_server import ops_app


def client(ready: Callable[[], bool] | None = None) -> Client:
    registry = CollectorRegistry()
    Counter("ledger_example_total", "An example.", registry=registry).inc(3)
    return Client(ops_app(registry, ready))


def test_metrics_and_liveness_are_served() -> None:
    metrics = client().get("/metrics")
    assert metrics.status_code == 200
    assert "ledger_example_total 3.0" in metrics.get_data(as_text=True)
    alive = client().get("/healthz")
    assert (alive.status_code, json.loads(alive.get_data())) == (200, {"status": "alive"})


def test_nothing_else_is() -> None:
    assert client().get("/v1/entries").status_code == 404
    assert client().post("/metrics").status_code == 405


def test_readiness_follows_its_check() -> None:
    state = {"ready": False}
    probed = client(lambda: state["ready"])
    assert probed.get("/readyz").status_code == 503
    state["ready"] = True
    assert probed.get("/readyz").status_code == 200
    assert client().get("/readyz").status_code == 404, "no check, no readiness endpoint"
