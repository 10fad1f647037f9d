"""gunicorn settings for the ledger's web workers, derived from LedgerSettings."""

from __future__ import annotations

import ssl
from collections.abc import Callable
from typing import Any

from prometheus_flask_exporter.multiprocess import GunicornInternalPrometheusMetrics

from distsum import logs, settings, telemetry, tls
from ledger_svc.config import LedgerSettings

_config = settings.load(LedgerSettings)
_tls = settings.load(tls.TlsSettings)

bind = f"{_config.http_host}:{_config.http_port}"
workers = _config.web_workers
threads = _config.web_threads
# gthread, with a deadline on each read and write of a connection (slow clients cannot hold threads).
worker_class = "ledger_svc.web.worker.DeadlineThreadWorker"
# The API's requests are a short GET line and a few headers; a larger head is refused (400) unread.
limit_request_line = 1024
limit_request_fields = 32
limit_request_field_size = 4096
# Heartbeat files in memory, not on a (possibly read-only) root filesystem.
worker_tmp_dir = "/dev/shm"
# Nothing manages gunicorn through its control socket, which would live under $HOME (read-only in the image).
control_socket_disable = True
graceful_timeout = 10
accesslog = None
logconfig_dict: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "distsum.logs.JsonFormatter", "service": "ledger-web"}},
    "filters": {"slow_clients": {"()": "ledger_svc.web.worker.SlowClientFilter"}},
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "stream": "ext://sys.stderr",
            "filters": ["slow_clients"],
        }
    },
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": ["stderr"], "propagate": False},
        "gunicorn.access": {"level": "INFO", "handlers": ["stderr"], "propagate": False},
    },
    "root": {"level": "INFO", "handlers": ["stderr"]},
}


if _tls.enabled:
    certfile = str(_tls.cert_file)
    keyfile = str(_tls.key_file)
    # Optional, not required: a caller without a certificate gets a 401 that says what is missing (a
    # required one would end in a handshake error), and the kubelet's HTTPS probe (no certificate) can
    # still read /readyz. A certificate that is sent must verify against the CA.
    ca_certs = str(_tls.client_ca_file) if _tls.client_auth else None
    cert_reqs = ssl.CERT_OPTIONAL if _tls.client_auth else ssl.CERT_NONE
    _contexts: tls.ReloadingSslContext | None = None

    def ssl_context(conf: Any, default_ssl_context_factory: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
        """Called for every new connection: the context of the current files (rotated in place)."""
        global _contexts
        if _contexts is None:
            _contexts = tls.ReloadingSslContext(_tls, default_ssl_context_factory)
        return _contexts.current()


def post_fork(server: Any, worker: Any) -> None:
    logs.configure("ledger-web")
    telemetry.configure_tracing("ledger")


def child_exit(server: Any, worker: Any) -> None:
    GunicornInternalPrometheusMetrics.mark_process_dead_on_child_exit(worker.pid)
