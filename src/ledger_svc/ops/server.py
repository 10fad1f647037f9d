"""The metrics port, served by the supervisor beside its children rather than by the REST workers.

- Prometheus reads /metrics here, so the monitoring namespace needs no access to the API (/v1/entries).
- The kubelet's liveness probe reads /healthz here: clients that stall the REST threads make the ledger
  unready (/readyz on the REST port), never restart it with its consumer.
/metrics merges every process's samples from the multiprocess directory, plus the CPU and memory of the
whole process group.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.multiprocess import MultiProcessCollector

from ledger_svc.ops.process_metrics import ProcessGroupCollector

log = logging.getLogger(__name__)

StartResponse = Callable[..., Any]


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a scrape in progress never holds up the supervisor's exit


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # the base class names it `format`
        """Scrapes and probes every few seconds are not worth a log line each."""


def _json(start_response: StartResponse, status: str, body: dict[str, str]) -> Iterable[bytes]:
    data = json.dumps(body).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


def ops_app(registry: CollectorRegistry) -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
    metrics = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return _json(start_response, "405 Method Not Allowed", {"error": "method_not_allowed"})
        if path == "/metrics":
            return metrics(environ, start_response)  # type: ignore[no-any-return]
        if path == "/healthz":
            # Served by the supervisor, which exits as soon as either child does.
            return _json(start_response, "200 OK", {"status": "alive"})
        return _json(start_response, "404 Not Found", {"error": "not_found"})

    return app


def serve(host: str, port: int, metrics_dir: Path) -> None:
    """Serve the metrics port on a daemon thread, with the samples the processes write to metrics_dir."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(metrics_dir))  # type: ignore[no-untyped-call]  # untyped upstream
    registry.register(ProcessGroupCollector())
    server = make_server(host, port, ops_app(registry), _ThreadingServer, _QuietHandler)
    threading.Thread(target=server.serve_forever, name="metrics-port", daemon=True).start()
