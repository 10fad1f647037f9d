"""The ledger's REST API through Flask's test client, over a real store."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import example, given
from hypothesis import strategies as st
from werkzeug.test import TestResponse

from distsum.domain import INT64_MAX, SumComputed
from ledger_svc import consumer_status
from ledger_svc.config import LedgerSettings
from ledger_svc.consumer_status import ConsumerStatus
from ledger_svc.domain.ledger import Delivery, PoisonRecord
from ledger_svc.store.writer import LedgerWriter
from ledger_svc.web.app import create_app
from ledger_svc.web.guards import DocumentedMethodsOnly

PRODUCED_AT = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
OPERANDS = [(1, 2), (INT64_MAX, 0), (-5, 0), (10, 20), (INT64_MAX, 0)]
COUNT = len(OPERANDS)
TOTAL = sum(a + b for a, b in OPERANDS)


def request_id(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012x}"


def make_settings(root: Path) -> LedgerSettings:
    (root / "data").mkdir()
    (root / "run").mkdir()
    return LedgerSettings(data_dir=root / "data", run_dir=root / "run", ready_stale_seconds=15)


def populate(config: LedgerSettings) -> None:
    writer = LedgerWriter.open_or_create(config.data_dir)
    try:
        deliveries = [
            Delivery(SumComputed(request_id(n), a, b, a + b, PRODUCED_AT), "sums", 0, n)
            for n, (a, b) in enumerate(OPERANDS)
        ]
        writer.commit_batch(
            deliveries[:3], [PoisonRecord("sums", 0, 99, "empty value")], {("sums", 0): (3, b"k")}
        )
        writer.commit_batch(deliveries[3:], [], {("sums", 0): (5, b"k")})
    finally:
        writer.close()


@pytest.fixture
def config(tmp_path: Path) -> LedgerSettings:
    settings = make_settings(tmp_path)
    populate(settings)
    return settings


@pytest.fixture
def client(config: LedgerSettings) -> FlaskClient:
    return create_app(config).test_client()


@pytest.fixture(scope="module")
def shared_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FlaskClient]:
    """One populated store for the read-only property tests (hypothesis forbids function fixtures)."""
    settings = make_settings(tmp_path_factory.mktemp("web"))
    populate(settings)
    app: Flask = create_app(settings)
    yield app.test_client()


def json_of(response: TestResponse) -> Any:
    assert response.is_json, response.data
    return response.get_json()


def test_total_reports_a_decimal_string_and_an_integer_count(client: FlaskClient) -> None:
    response = client.get("/v1/total")
    assert response.status_code == 200
    body = json_of(response)
    assert body["total"] == str(TOTAL)
    assert TOTAL > INT64_MAX  # the string form is what keeps it exact
    assert body["count"] == COUNT
    assert body["dead_letters"] == 1
    assert datetime.fromisoformat(body["updated_at"]).tzinfo is not None
    assert list(body) == ["total", "count", "updated_at", "dead_letters"]


def test_total_without_a_store_is_503(tmp_path: Path) -> None:
    client = create_app(make_settings(tmp_path)).test_client()
    response = client.get("/v1/total")
    assert response.status_code == 503
    assert json_of(response)["error"] == "store_unavailable"


def test_entries_page_through_cursor_next_cursor_and_has_more(client: FlaskClient) -> None:
    first = json_of(client.get("/v1/entries?limit=2"))
    assert [e["cursor"] for e in first["entries"]] == ["1", "2"]
    assert first["next_cursor"] == "2"
    assert first["has_more"] is True

    second = json_of(client.get("/v1/entries", query_string={"after": "2", "limit": "2"}))
    assert [e["cursor"] for e in second["entries"]] == ["3", "4"]
    assert second["has_more"] is True

    last = json_of(client.get("/v1/entries", query_string={"after": "4", "limit": "2"}))
    assert [e["cursor"] for e in last["entries"]] == ["5"]
    assert last["next_cursor"] == "5"
    assert last["has_more"] is False

    beyond = json_of(client.get("/v1/entries", query_string={"after": "5"}))
    assert beyond == {"entries": [], "next_cursor": "5", "has_more": False}


def test_exact_page_size_has_no_more(client: FlaskClient) -> None:
    body = json_of(client.get("/v1/entries", query_string={"limit": str(COUNT)}))
    assert len(body["entries"]) == COUNT
    assert body["has_more"] is False


def test_entries_carry_numbers_as_strings(client: FlaskClient) -> None:
    body = json_of(client.get("/v1/entries"))
    assert body["has_more"] is False
    entry = body["entries"][1]
    assert entry == {
        "cursor": "2",
        "request_id": request_id(1),
        "a": str(INT64_MAX),
        "b": "0",
        "sum": str(INT64_MAX),
        "produced_at": "2025-01-02T03:04:05.000+00:00",
        "applied_at": entry["applied_at"],
    }
    assert [e["request_id"] for e in body["entries"]] == [request_id(n) for n in range(COUNT)]


def test_walking_next_cursor_visits_every_entry_once(client: FlaskClient) -> None:
    seen: list[str] = []
    cursor = "0"
    for _ in range(COUNT + 1):
        page = json_of(client.get("/v1/entries", query_string={"after": cursor, "limit": "1"}))
        seen += [e["request_id"] for e in page["entries"]]
        cursor = page["next_cursor"]
        if not page["has_more"]:
            break
    assert seen == [request_id(n) for n in range(COUNT)]


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=1001",
        "limit=abc",
        "limit=",
        "limit=-1",
        "limit=1.5",
        "after=-1",
        "after=%C2%B2",  # superscript two: a Unicode digit, not an ASCII one
        "after=9223372036854775808",
        "after=99999999999999999999",
        "after=+1",
        "after=%201",
        "colour=red",
        "after=1&cursor=2",
        "limit=5&limit=7",
        "after=1&after=1",
        "limit=&limit=5",
    ],
)
def test_bad_query_parameters_are_400_json(client: FlaskClient, query: str) -> None:
    response = client.get(f"/v1/entries?{query}")
    assert response.status_code == 400
    body = json_of(response)
    assert body["error"] == "bad_request"
    assert body["message"]


@pytest.mark.parametrize("name", ["after", "limit"])
def test_a_repeated_parameter_is_named_in_the_400(client: FlaskClient, name: str) -> None:
    response = client.get(f"/v1/entries?{name}=1&{name}=2")
    assert response.status_code == 400
    assert json_of(response) == {"error": "bad_request", "message": f"{name} must be given at most once"}


def test_largest_cursor_is_accepted(client: FlaskClient) -> None:
    response = client.get("/v1/entries", query_string={"after": str(INT64_MAX), "limit": "1000"})
    assert response.status_code == 200
    assert json_of(response)["entries"] == []


def test_unknown_path_is_404_json(client: FlaskClient) -> None:
    response = client.get("/v1/nothing-here")
    assert response.status_code == 404
    assert json_of(response)["error"] == "not_found"


def test_wrong_method_is_405_json(client: FlaskClient) -> None:
    response = client.post("/v1/total")
    assert response.status_code == 405
    assert json_of(response)["error"] == "method_not_allowed"


def test_healthz_is_200(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert json_of(response) == {"status": "alive"}


def test_readyz_is_503_until_the_consumer_reports(client: FlaskClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 503
    body = json_of(response)
    assert body["ready"] is False
    assert body["checks"] == {"store": "ok", "consumer": "no status reported yet"}


def test_readyz_is_200_with_a_fresh_consuming_status(client: FlaskClient, config: LedgerSettings) -> None:
    consumer_status.write(config.status_file, ConsumerStatus(state="consuming", assigned=[0]))
    response = client.get("/readyz")
    assert response.status_code == 200
    assert json_of(response) == {"ready": True, "checks": {"store": "ok", "consumer": "ok"}}


@pytest.mark.parametrize(
    ("make_status", "reason"),
    [
        # Built when the test runs: a heartbeat stamped at collection would be stale in a long session.
        (lambda: ConsumerStatus("consuming", [0], heartbeat=time.time() - 3600), "heartbeat"),
        (lambda: ConsumerStatus("degraded", [0], reason="disk full"), "degraded: disk full"),
        (lambda: ConsumerStatus("consuming", []), "no partitions"),
    ],
)
def test_readyz_is_503_when_the_consumer_is_not_ready(
    client: FlaskClient, config: LedgerSettings, make_status: Callable[[], ConsumerStatus], reason: str
) -> None:
    consumer_status.write(config.status_file, make_status())
    response = client.get("/readyz")
    assert response.status_code == 503
    assert reason in json_of(response)["checks"]["consumer"]


def test_readyz_is_503_without_a_store_even_if_the_consumer_is_fine(tmp_path: Path) -> None:
    config = make_settings(tmp_path)
    consumer_status.write(config.status_file, ConsumerStatus(state="consuming", assigned=[0]))
    response = create_app(config).test_client().get("/readyz")
    assert response.status_code == 503
    assert json_of(response)["checks"]["store"].startswith("unreadable")


def expected_ok(raw: str, low: int, high: int) -> bool:
    return re.fullmatch(r"[0-9]{1,19}", raw) is not None and low <= int(raw) <= high


@given(limit=st.none() | st.text(max_size=25), after=st.none() | st.text(max_size=25))
@example(limit="1000", after="0")
@example(limit="0001", after="0000000000000000004")
@example(limit="²", after=None)
@example(limit=None, after="9223372036854775807")
def test_any_limit_and_after_give_200_or_400_json(
    shared_client: FlaskClient, limit: str | None, after: str | None
) -> None:
    query = {k: v for k, v in {"limit": limit, "after": after}.items() if v is not None}
    response = shared_client.get("/v1/entries", query_string=query)
    body = json_of(response)
    limit_text = "100" if limit is None else limit
    after_text = "0" if after is None else after
    if expected_ok(limit_text, 1, 1000) and expected_ok(after_text, 0, INT64_MAX):
        assert response.status_code == 200, body
        cursors = range(int(after_text) + 1, COUNT + 1)
        assert [int(e["cursor"]) for e in body["entries"]] == list(cursors)[: int(limit_text)]
    else:
        assert response.status_code == 400, body
        assert body["error"] == "bad_request"


@given(st.binary(max_size=60))
@example(b"limit=5&limit=0")
@example(b"after=%ZZ")
@example(b"&&==&")
def test_any_raw_query_string_gives_200_or_400_json(shared_client: FlaskClient, raw: bytes) -> None:
    # WSGI carries the query string as bytes decoded as latin-1.
    response = shared_client.get("/v1/entries", query_string=raw.decode("latin-1"))
    body = json_of(response)
    if response.status_code == 200:
        assert set(body) == {"entries", "next_cursor", "has_more"}
    else:
        assert response.status_code == 400, body
        assert body["error"] == "bad_request"


def test_only_documented_methods_reach_the_app(tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path))
    app.wsgi_app = DocumentedMethodsOnly(app.wsgi_app)  # type: ignore[method-assign]
    client = app.test_client()
    for method in ("XAAA", "OPTIONS", "POST", "DELETE"):
        response = client.open("/v1/total", method=method)
        assert response.status_code == 405, method
        assert response.headers["Allow"] == "GET, HEAD"
        assert json_of(response)["error"] == "method_not_allowed"
    assert client.head("/healthz").status_code == 200
