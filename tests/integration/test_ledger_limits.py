"""What one caller can cost the ledger's REST port: invented methods and stalled connections against the
real gunicorn, while the real clients, the liveness probe and the count carry on (ledger_svc/web/guards.py,
ledger_svc/web/worker.py, ledger_svc/ops/server.py)."""

from __future__ import annotations

import contextlib
import http.client
import itertools
import json
import socket
import string
import time
import urllib.parse
from pathlib import Path

from distsum.clients.ledger import LedgerClient, http_json
from distsum.clients.waiting import wait_until
from localstack.stack import Ledger
from tests.conftest import Topic
from tests.integration.conftest import LedgerFactory, SumServiceFactory
from tests.services import new_id

INVENTED = 10_000
STALLED = 50
IO_TIMEOUT = 1.0


def metrics_text(ledger: Ledger) -> str:
    with contextlib.closing(
        http.client.HTTPConnection(*_host_port(ledger.metrics_url), timeout=10)
    ) as connection:
        connection.request("GET", "/metrics")
        return connection.getresponse().read().decode()


def sample(text: str, line_start: str) -> float:
    (value,) = [line.rsplit(" ", 1)[1] for line in text.splitlines() if line.startswith(line_start + " ")]
    return float(value)


def _host_port(url: str) -> tuple[str, int]:
    parts = urllib.parse.urlsplit(url)
    assert parts.hostname and parts.port, url
    return parts.hostname, parts.port


def directory_bytes(path: Path) -> int:
    return sum(file.stat().st_size for file in path.rglob("*") if file.is_file())


def invented_methods() -> itertools.islice[str]:
    """XAAA, XAAB, ...: well-formed method names gunicorn accepts, none of them the API's."""
    letters = string.ascii_uppercase
    return itertools.islice(("X" + "".join(t) for t in itertools.product(letters, repeat=3)), INVENTED)


def test_invented_methods_get_405_and_make_no_metric_series(
    topic: Topic, start_sum_service: SumServiceFactory, start_ledger: LedgerFactory
) -> None:
    ledger = start_ledger(topic)
    start_sum_service(topic).client().add(new_id(), 2, 3)
    ledger.client.wait_count(1)
    host, port = _host_port(ledger.url)
    with contextlib.closing(http.client.HTTPConnection(host, port, timeout=10)) as connection:
        # The series of the real requests and of the refusal exist before the measurement starts.
        for method in ("GET", "XWARM"):
            connection.request(method, "/v1/total")
            connection.getresponse().read()
        before = directory_bytes(ledger.settings.metrics_dir)
        for method in invented_methods():
            connection.request(method, "/v1/total")
            response = connection.getresponse()
            body = json.loads(response.read())
            assert response.status == 405, (method, body)
            assert body["error"] == "method_not_allowed"
            assert response.getheader("Allow") == "GET, HEAD"
    grown = directory_bytes(ledger.settings.metrics_dir) - before
    # Without the guard each method made a counter and a histogram series per worker: tens of MiB here.
    assert grown <= 1 << 20, f"the metrics directory grew by {grown} bytes"
    text = metrics_text(ledger)
    assert sample(text, 'ledger_http_refused_total{reason="method_not_allowed"}') == INVENTED + 1
    assert "XAAA" not in text and "XWARM" not in text
    assert ledger.client.total()["total"] == "5"


def test_stalled_clients_lose_their_connection_and_cannot_get_the_ledger_killed(
    topic: Topic, start_sum_service: SumServiceFactory, start_ledger: LedgerFactory
) -> None:
    """50 clients send one byte and stall, against 8 REST threads: liveness keeps answering at once, each
    stalled connection is closed after its read deadline, and a real client is served with the count
    exact."""
    ledger = start_ledger(topic, LEDGER_HTTP_IO_TIMEOUT_SECONDS=str(IO_TIMEOUT))
    sums = start_sum_service(topic)
    sums.client().add(new_id(), 2, 3)
    ledger.client.wait_count(1)
    host, port = _host_port(ledger.url)
    stalled = []
    for _ in range(STALLED):
        connection = socket.create_connection((host, port), timeout=5)
        connection.sendall(b"G")
        stalled.append(connection)
    try:
        started = time.monotonic()
        for _ in range(5):
            status, body = http_json(ledger.metrics_url.replace("/metrics", "/healthz"), timeout=1)
            assert (status, body) == (200, {"status": "alive"}), "liveness must not wait for the REST threads"
        assert time.monotonic() - started < 5
        sums.client().add(new_id(), 4, 5)
        # Served once the deadlines have freed the threads: about STALLED / 8 rounds of IO_TIMEOUT, so
        # this client waits longer for an answer than the ledger handle's own.
        patient = LedgerClient(ledger.url, timeout=60, alive=ledger.process.assert_running)
        assert patient.wait_count(2, timeout=90)["total"] == "14"
        for connection in stalled:
            connection.settimeout(30)
            assert connection.recv(1) == b"", "the server closes a stalled connection"
    finally:
        for connection in stalled:
            connection.close()
    wait_until(
        lambda: sample(metrics_text(ledger), "ledger_http_slow_clients_total") == STALLED,
        30,
        "every stalled connection to be counted once",
    )
