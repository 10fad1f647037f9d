"""REST entrypoint (Flask): reads the store read-only, so any number of workers is safe."""

from __future__ import annotations

import logging
import re
import sqlite3
import time
from importlib import resources
from typing import Any

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from ledger_svc import consumer_status
from ledger_svc.config import LedgerSettings
from ledger_svc.store.reader import LedgerReader

log = logging.getLogger(__name__)

MAX_PAGE = 1000
DEFAULT_PAGE = 100
ENTRIES_PARAMETERS = ("after", "limit")
# The API's description, kept beside the code (tests/unit/test_openapi.py keeps the two in step).
OPENAPI = resources.files("ledger_svc.web").joinpath("openapi.json").read_bytes()


class BadQuery(ValueError):
    pass


def _int_param(name: str, default: int, low: int, high: int) -> int:
    values = request.args.getlist(name)
    if len(values) > 1:
        # Proxies and clients disagree on which copy wins; taking one would answer a question not asked.
        raise BadQuery(f"{name} must be given at most once")
    if not values:
        return default
    raw = values[0]
    if not re.fullmatch(r"[0-9]{1,19}", raw):
        raise BadQuery(f"{name} must be an integer between {low} and {high}")
    value = int(raw)
    if not low <= value <= high:
        raise BadQuery(f"{name} must be an integer between {low} and {high}")
    return value


def _error(status: int, error: str, message: str) -> tuple[Any, int]:
    return jsonify({"error": error, "message": message}), status


def _store_unavailable(exc: sqlite3.Error) -> tuple[Any, int]:
    # SQLite's text names files and internals: it goes to the log, the caller learns what to do.
    log.warning("the ledger store cannot be read", extra={"detail": str(exc)})
    return _error(503, "store_unavailable", "the ledger store cannot be read right now; retry shortly")


def create_app(config: LedgerSettings) -> Flask:
    app = Flask("ledger_svc")
    app.json.sort_keys = False  # type: ignore[attr-defined]
    reader = LedgerReader(config.data_dir)

    @app.get("/v1/total")
    def total() -> Any:
        try:
            snapshot = reader.snapshot()
        except sqlite3.Error as exc:
            return _store_unavailable(exc)
        return jsonify(
            total=str(snapshot.balance.total),
            count=snapshot.balance.count,
            updated_at=snapshot.updated_at,
            dead_letters=snapshot.dead_letters,
        )

    @app.get("/v1/entries")
    def entries() -> Any:
        unknown = sorted(set(request.args) - set(ENTRIES_PARAMETERS))
        if unknown:
            return _error(400, "bad_request", f"unknown query parameter(s): {', '.join(unknown)}")
        try:
            after = _int_param("after", 0, 0, 2**63 - 1)
            limit = _int_param("limit", DEFAULT_PAGE, 1, MAX_PAGE)
        except BadQuery as exc:
            return _error(400, "bad_request", str(exc))
        try:
            page = reader.entries(after, limit + 1)
        except sqlite3.Error as exc:
            return _store_unavailable(exc)
        has_more = len(page) > limit
        page = page[:limit]
        return jsonify(
            entries=[
                {
                    "cursor": str(e.seq),
                    "request_id": e.request_id,
                    "a": str(e.a),
                    "b": str(e.b),
                    "sum": str(e.sum),
                    "produced_at": e.produced_at,
                    "applied_at": e.applied_at,
                }
                for e in page
            ],
            next_cursor=str(page[-1].seq) if page else str(after),
            has_more=has_more,
        )

    @app.get("/healthz")
    def healthz() -> Any:
        return jsonify(status="alive")

    @app.get("/readyz")
    def readyz() -> Any:
        checks: dict[str, str] = {}
        try:
            reader.snapshot()
            checks["store"] = "ok"
        except sqlite3.Error as exc:
            log.warning("readiness: the ledger store cannot be read", extra={"detail": str(exc)})
            checks["store"] = "unreadable"
        status = consumer_status.read(config.status_file)
        if status is None:
            checks["consumer"] = "no status reported yet"
        else:
            checks["consumer"] = status.ready(config.ready_stale_seconds, time.time())[1]
        ready = all(value == "ok" for value in checks.values())
        return jsonify(ready=ready, checks=checks), 200 if ready else 503

    @app.get("/openapi.json")
    def openapi() -> Any:
        return Response(OPENAPI, mimetype="application/json")

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Any:
        name = (exc.name or "error").lower().replace(" ", "_")
        return _error(exc.code or 500, name, exc.description or name)

    return app
