"""The ledger's REST API (`/v1/total`, `/v1/entries`, `/readyz`) as one typed client."""

from __future__ import annotations

import json
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any, TypedDict

from distsum.clients.waiting import wait_until

PAGE = 1000  # the API's largest page


class Total(TypedDict):
    total: str  # a decimal string: it may exceed what JSON numbers carry exactly
    count: int
    updated_at: str | None
    dead_letters: int


class Entry(TypedDict):
    cursor: str
    request_id: str
    a: str
    b: str
    sum: str
    produced_at: str
    applied_at: str


class LedgerError(RuntimeError):
    """The ledger answered, but not 200: `status` and the body's text say why."""

    def __init__(self, url: str, status: int, text: str) -> None:
        super().__init__(f"GET {url} answered {status}: {text.strip()}")
        self.url, self.status, self.text = url, status, text


class LedgerUnavailable(LedgerError):
    """503: not ready, or the store cannot be read (not created yet by a ledger that just started)."""


def http_json(url: str, timeout: float = 10.0, context: ssl.SSLContext | None = None) -> tuple[int, Any]:
    """(status, parsed JSON body) of a GET; raises OSError when nothing answers, ValueError on a body that
    is not JSON. `context`: the TLS settings for an https URL (distsum.tls.client_ssl_context)."""
    status, text = _get(url, timeout, context)
    return status, json.loads(text or "null")


def _get(url: str, timeout: float, context: ssl.SSLContext | None = None) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=context) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


class LedgerClient:
    """One ledger at `url` (`http://host:port`, or `https://` with `context`). `alive`, where given, is
    called on every poll of a wait and raises when what serves the URL is gone, so a wait fails at once
    with the reason."""

    def __init__(
        self,
        url: str,
        timeout: float = 10.0,
        alive: Callable[[], object] | None = None,
        context: ssl.SSLContext | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.context = context
        self._alive = alive or (lambda: None)

    def get(self, path: str) -> tuple[int, Any]:
        """(status, parsed JSON body) of any path; raises OSError when nothing answers."""
        return http_json(self.url + path, self.timeout, self.context)

    def _ok(self, path: str) -> Any:
        status, text = _get(self.url + path, self.timeout, self.context)
        if status == 503:
            raise LedgerUnavailable(self.url + path, status, text)
        if status != 200:
            raise LedgerError(self.url + path, status, text)
        return json.loads(text)

    def total(self) -> Total:
        body: Total = self._ok("/v1/total")
        return body

    def count(self) -> int:
        return self.total()["count"]

    def entries(self, after: int = 0, limit: int = PAGE) -> Iterator[Entry]:
        """Every applied entry after the cursor, oldest first, paging as the API says."""
        while True:
            page = self._ok(f"/v1/entries?after={after}&limit={limit}")
            yield from page["entries"]
            after = int(page["next_cursor"])
            if not page["has_more"]:
                return

    def ready(self) -> bool:
        """Whether /readyz says ready; False while nothing answers. Raises only through `alive`."""
        self._alive()
        try:
            return self.get("/readyz")[0] == 200
        except (OSError, ValueError):
            return False

    def wait_ready(self, timeout: float = 60) -> None:
        wait_until(self.ready, timeout, f"the ledger at {self.url} to be ready", 0.1)

    def wait_count(self, count: int, timeout: float = 60) -> Total:
        """/v1/total once its count is exactly `count`."""

        def reached() -> Total | None:
            self._alive()
            body = self.total()
            return body if body["count"] == count else None

        return wait_until(reached, timeout, f"the ledger at {self.url} to count {count}", 0.1)

    def wait_settled(
        self, at_least: int = 0, at_most: int | None = None, quiet: float = 2.0, timeout: float = 300
    ) -> Total:
        """/v1/total once its count has reached `at_least` and then not moved for `quiet` seconds, or has
        reached `at_most` (nothing more can come). A ledger restarting meanwhile only delays it."""
        deadline = time.monotonic() + timeout
        last: Total | None = None
        since = time.monotonic()
        while True:
            self._alive()
            try:
                body: Total | None = self.total()
            except (OSError, ValueError, LedgerError):
                body = None
            if body is not None and (last is None or body["count"] != last["count"]):
                last, since = body, time.monotonic()
            if last is not None and (
                (at_most is not None and last["count"] >= at_most)
                or (last["count"] >= at_least and time.monotonic() - since >= quiet)
            ):
                return last
            if time.monotonic() > deadline:
                raise LedgerError(
                    self.url + "/v1/total",
                    200 if last else 0,
                    f"count did not settle at {at_least}..{at_most} within {timeout:.0f} s (last: {last})",
                )
            time.sleep(0.1)
