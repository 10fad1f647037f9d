"""WSGI application for gunicorn: the REST API plus multiprocess-safe /metrics and request spans."""

from __future__ import annotations

from opentelemetry.instrumentation.flask import FlaskInstrumentor
from prometheus_client import CollectorRegistry
from prometheus_flask_exporter.multiprocess import GunicornInternalPrometheusMetrics

from distsum import settings
from ledger_svc.config import LedgerSettings
from ledger_svc.process_metrics import ProcessGroupCollector
from ledger_svc.web import create_app

app = create_app(settings.load(LedgerSettings))
registry = CollectorRegistry()
registry.register(ProcessGroupCollector())
# Grouped by route, not raw path, so unknown URLs cannot blow up label cardinality.
GunicornInternalPrometheusMetrics(app, registry=registry, group_by="url_rule", excluded_paths=["/metrics"])
FlaskInstrumentor().instrument_app(app, excluded_urls="healthz,readyz,metrics")
