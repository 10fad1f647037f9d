"""gunicorn's gthread worker with a deadline on every read and write of a client connection.

gthread gives a connection to a thread as soon as it is readable, then reads the request head blocking
and without a deadline: a client that sends one byte and stalls holds that thread as long as it likes,
and a handful of them hold every thread. SO_RCVTIMEO and SO_SNDTIMEO bound each blocking read and write
in the kernel (gthread resets Python's own socket timeout to none before reading): the call fails with
EAGAIN, gthread closes the connection and the thread serves the next client. A drip of one byte per
period stays bounded by the request head limits (gunicorn_conf.py).
"""

from __future__ import annotations

import errno
import logging
import socket
import struct
from typing import Any

from gunicorn.workers.gthread import ThreadWorker
from prometheus_client import Counter

from distsum import settings
from ledger_svc.config import LedgerSettings

_IO_TIMEOUT = settings.load(LedgerSettings).http_io_timeout_seconds
_SECONDS, _FRACTION = divmod(_IO_TIMEOUT, 1)
_TIMEVAL = struct.pack("ll", int(_SECONDS), int(_FRACTION * 1_000_000))

TOO_SLOW = Counter(
    "ledger_http_slow_clients_total",
    "REST connections closed because the client sent or read nothing for LEDGER_HTTP_IO_TIMEOUT_SECONDS.",
)


class DeadlineThreadWorker(ThreadWorker):  # type: ignore[misc]  # gunicorn is untyped
    def enqueue_req(self, conn: Any) -> None:
        if not conn.initialized:  # a new connection, before its first read
            conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, _TIMEVAL)
            conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, _TIMEVAL)
        super().enqueue_req(conn)


class SlowClientFilter(logging.Filter):
    """gunicorn reports an expired deadline only as "Socket error processing request." with a traceback
    (EAGAIN); this turns it into one plain line, and counts it (that record is the only signal)."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, OSError) and error.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
            TOO_SLOW.inc()
            record.msg = "connection closed: the client stalled longer than LEDGER_HTTP_IO_TIMEOUT_SECONDS"
            record.args = ()
            record.exc_info = None
            record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True
