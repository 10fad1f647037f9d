"""The ledger's outcome read through the external contract only: `/v1/entries` (paged, from a cursor),
`/v1/total` and the `total` file on the volume."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

from bench.audit import entries
from devstack.services import http_json


class EntryReader:
    """Reads the applied entries incrementally: each `read_new` continues from the last cursor."""

    def __init__(self, url: str, after: int = 0) -> None:
        self.url, self.cursor = url, after
        self.entries: list[dict[str, Any]] = []
        self.ids: set[str] = set()

    def read_new(self) -> int:
        new = 0
        for entry in entries(self.url, self.cursor):
            self.entries.append(entry)
            self.ids.add(entry["request_id"])
            self.cursor = int(entry["cursor"])
            new += 1
        return new

    def wait_for(self, wanted: Callable[[], set[str]], timeout: float, alive: Callable[[], object]) -> None:
        """Read until every id of `wanted()` has an entry (the ledger caught up), or raise after timeout."""
        deadline = time.monotonic() + timeout
        while True:
            alive()
            # The ledger may be restarting; the deadline bounds the wait.
            with contextlib.suppress(OSError, RuntimeError, ValueError):
                self.read_new()
            missing = wanted() - self.ids
            if not missing:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{len(missing)} acknowledged ids still unapplied after {timeout:.0f} s")
            time.sleep(0.5)


def total(url: str) -> dict[str, Any]:
    status, body = http_json(f"{url}/v1/total", timeout=10)
    if status != 200 or not isinstance(body, dict):
        raise RuntimeError(f"GET {url}/v1/total answered {status}: {body}")
    return body


def wait_settled(url: str, quiet: float, timeout: float, alive: Callable[[], object]) -> dict[str, Any]:
    """`/v1/total` once its count has not moved for `quiet` seconds."""
    deadline = time.monotonic() + timeout
    last: dict[str, Any] | None = None
    since = time.monotonic()
    while True:
        alive()
        try:
            body = total(url)
        except (OSError, RuntimeError, ValueError):
            body = None
        if body is not None and (last is None or body["count"] != last["count"]):
            last, since = body, time.monotonic()
        if last is not None and time.monotonic() - since >= quiet:
            return last
        if time.monotonic() > deadline:
            raise RuntimeError(f"the ledger's count did not settle within {timeout:.0f} s (last: {last})")
        time.sleep(0.25)
