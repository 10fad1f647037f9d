"""What the ledger's REST port refuses before any other code runs: methods the API does not document,
and, with mutual TLS, callers without a certificate or whose identity may not read.

prometheus_flask_exporter labels its request metrics with the request's method. gunicorn accepts any
well-formed method name (XAAA, XAAB, ...), so each invented one would make new series in the
multiprocess directory until its volume fills; answering 405 in front of the Flask app means no label
is ever made from a method the API does not serve.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Iterable
from typing import Any

from prometheus_client import Counter

from distsum import tls
from distsum.logs import ThrottledLog
from distsum.ops_server import json_response

log = logging.getLogger(__name__)

# The API is read-only: GET, and HEAD (which Flask derives from every GET route).
DOCUMENTED_METHODS = ("GET", "HEAD")
_ALLOW = ", ".join(DOCUMENTED_METHODS)

REFUSED = Counter(
    "ledger_http_refused_total",
    "HTTP requests refused before the API saw them, by reason (method_not_allowed, unauthenticated, "
    "permission_denied).",
    ["reason"],
)

WsgiApp = Any  # a WSGI callable: (environ, start_response) -> iterable of bytes
StartResponse = Any


def _refuse(
    start_response: StartResponse, status: str, error: str, message: str, *headers: tuple[str, str]
) -> Iterable[bytes]:
    return json_response(start_response, status, {"error": error, "message": message}, headers)


class DocumentedMethodsOnly:
    """WSGI middleware: 405 (JSON, with Allow) for any method but GET and HEAD."""

    def __init__(self, app: WsgiApp) -> None:
        self._app = app
        self._refused = REFUSED.labels(reason="method_not_allowed")
        self._log = ThrottledLog(log, interval=10.0)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") in DOCUMENTED_METHODS:
            return self._app(environ, start_response)  # type: ignore[no-any-return]
        self._refused.inc()
        # The method is the caller's text: logged cut short, never used as a label.
        method = str(environ.get("REQUEST_METHOD", ""))[:16]
        self._log.log(
            logging.WARNING,
            "method_not_allowed",
            "request refused: method not served",
            {"method": method, "peer": environ.get("REMOTE_ADDR")},
        )
        return _refuse(
            start_response,
            "405 METHOD NOT ALLOWED",
            "method_not_allowed",
            f"this API serves only {_ALLOW}",
            ("Allow", _ALLOW),
        )


# The kubelet's probes cannot present a client certificate; these answer nothing but liveness and
# readiness.
PROBE_PATHS = frozenset({"/healthz", "/readyz"})


class CallerCheck:
    """WSGI middleware for mutual TLS (the handshake asked for a client certificate and verified any it
    got): 401 without one, 403 for an identity not in TLS_ALLOWED_CLIENTS (distsum.tls.Admission)."""

    def __init__(self, app: WsgiApp, allowed: tuple[str, ...]) -> None:
        self._app = app
        self._admission = tls.Admission(allowed, REFUSED, log, logging.getLogger("ledger_svc.audit"))

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = str(environ.get("PATH_INFO", ""))[:64]  # the caller's text, cut short for the logs
        if path in PROBE_PATHS:
            return self._app(environ, start_response)  # type: ignore[no-any-return]
        connection = environ.get("gunicorn.socket")
        certificate = connection.getpeercert() if isinstance(connection, ssl.SSLSocket) else None
        identities = tls.certificate_identities(certificate or {})
        if self._admission.admit(identities, path, lambda: environ.get("REMOTE_ADDR")) is None:
            if not identities:
                return _refuse(
                    start_response, "401 UNAUTHORIZED", "unauthenticated", tls.UNAUTHENTICATED_MESSAGE
                )
            message = tls.denied_message(identities[0], "read the ledger")
            return _refuse(start_response, "403 FORBIDDEN", "permission_denied", message)
        return self._app(environ, start_response)  # type: ignore[no-any-return]
