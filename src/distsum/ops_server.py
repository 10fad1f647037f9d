"""A service's metrics port: /metrics for Prometheus, and /healthz and /readyz for the kubelet.

Plaintext and apart from the API on purpose. Prometheus then needs no access to the API, and the
kubelet's probes work whatever the API's TLS asks for: its gRPC probe speaks no TLS, and its HTTPS
probes present no client certificate. Served on daemon threads, so a scrape or a probe in progress
never holds up the process's exit.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # the base class names it `format`
        """Scrapes and probes every few seconds are not worth a log line each."""


def json_response(
    start_response: StartResponse,
    status: str,
    body: dict[str, Any],
    headers: tuple[tuple[str, str], ...] = (),
) -> Iterable[bytes]:
    """A WSGI answer with a JSON body (also the ledger's refusals in front of its API)."""
    data = json.dumps(body, separators=(",", ":")).encode()
    start_response(
        status, [("Content-Type", "application/json"), ("Content-Length", str(len(data))), *headers]
    )
    return [data]


def ops_app(registry: CollectorRegistry, ready: Callable[[], bool] | None = None) -> WsgiApp:
    """/metrics of `registry`; /healthz, 200 while the process serves it; /readyz, 200 or 503 as `ready`
    says (404 without one)."""
    metrics = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return json_response(
                start_response,
                "405 Method Not Allowed",
                {"error": "method_not_allowed"},
                (("Allow", "GET, HEAD"),),
            )
        if path == "/metrics":
            return metrics(environ, start_response)  # type: ignore[no-any-return]
        if path == "/healthz":
            return json_response(start_response, "200 OK", {"status": "alive"})
        if path == "/readyz" and ready is not None:
            if ready():
                return json_response(start_response, "200 OK", {"ready": True})
            return json_response(start_response, "503 Service Unavailable", {"ready": False})
        return json_response(start_response, "404 Not Found", {"error": "not_found"})

    return app


def serve(host: str, port: int, registry: CollectorRegistry, ready: Callable[[], bool] | None = None) -> None:
    """Serve ops_app on host:port from a daemon thread; returns once it listens."""
    server = make_server(host, port, ops_app(registry, ready), _ThreadingServer, _QuietHandler)
    threading.Thread(target=server.serve_forever, name="metrics-port", daemon=True).start()
