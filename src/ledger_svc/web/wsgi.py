"""WSGI application for gunicorn: the REST API plus multiprocess-safe /metrics and request spans."""

from __future__ import annotations

from opentelemetry.instrumentation.flask import FlaskInstrumentor
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_flask_exporter.multiprocess import GunicornInternalPrometheusMetrics

from distsum import settings
from ledger_svc.config import LedgerSettings
from ledger_svc.web.app import create_app
from ledger_svc.web.process_metrics import ProcessGroupCollector


class LedgerPrometheusMetrics(GunicornInternalPrometheusMetrics):  # type: ignore[misc]
    """The exporter builds a fresh registry for every scrape in multiprocess mode, so a registry handed
    to it is never served; this one adds the process group's CPU and memory to each scrape."""

    def generate_metrics(
        self, accept_header: str | None = None, names: list[str] | None = None
    ) -> tuple[str, str]:
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # untyped in prometheus_client
        registry.register(ProcessGroupCollector())
        encode, content_type = choose_encoder(accept_header or "")
        return encode(registry.restricted_registry(names) if names else registry).decode(), content_type


app = create_app(settings.load(LedgerSettings))
# Grouped by route, not raw path, so unknown URLs cannot blow up label cardinality.
LedgerPrometheusMetrics(app, group_by="url_rule", excluded_paths=["/metrics"])
FlaskInstrumentor().instrument_app(app, excluded_urls="healthz,readyz,metrics")
