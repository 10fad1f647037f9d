"""WSGI application for gunicorn: the REST API with its request metrics and spans, behind the method
guard. /metrics is not served here but on the metrics port (ledger_svc/ops/server.py)."""

from __future__ import annotations

from opentelemetry.instrumentation.flask import FlaskInstrumentor
from prometheus_flask_exporter.multiprocess import GunicornPrometheusMetrics

from distsum import settings, tls
from ledger_svc.config import LedgerSettings
from ledger_svc.web.app import create_app
from ledger_svc.web.guards import CallerCheck, DocumentedMethodsOnly

app = create_app(settings.load(LedgerSettings))
# Request metrics into the multiprocess directory, grouped by route, not raw path, so unknown URLs
# cannot blow up label cardinality (and the guard below keeps unknown methods out).
GunicornPrometheusMetrics(app, group_by="url_rule")
FlaskInstrumentor().instrument_app(app, excluded_urls="healthz,readyz")
# Outside the app: a refused request reaches neither the metrics nor the spans; the method first.
transport = settings.load(tls.TlsSettings)
if transport.enabled and transport.client_auth:
    app.wsgi_app = CallerCheck(app.wsgi_app, transport.allowed_clients)  # type: ignore[method-assign]
app.wsgi_app = DocumentedMethodsOnly(app.wsgi_app)  # type: ignore[method-assign]
