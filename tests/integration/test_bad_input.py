"""Bad input over the real wire gets the contract's error and is never counted."""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from distsum.clients.ledger import http_json
from distsum.domain import INT64_MAX, INT64_MIN, InvalidRequestId, canonical_request_id
from soak.fuzz import int64s, request_ids
from tests.conftest import Topic
from tests.integration.conftest import LedgerFactory, SumServiceFactory

# A few ids and operands drawn again and again, so replays (same id, same operands) and conflicts (same id,
# other operands) are among the cases, not left to chance.
REUSED_IDS = st.sampled_from([f"7c9e6679-7425-40de-944b-e07fc1f90ae{i}" for i in range(3)])
SMALL = st.integers(0, 2)


def test_grpc_inputs_get_the_contract_status_codes(
    topic: Topic, start_sum_service: SumServiceFactory, start_ledger: LedgerFactory
) -> None:
    ledger = start_ledger(topic)
    client = start_sum_service(topic).client()
    operands: dict[str, tuple[int, int]] = {}  # canonical id -> the operands it was first accepted with

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(request_id=request_ids | REUSED_IDS, a=int64s | SMALL, b=int64s | SMALL)
    def check(request_id: str, a: int, b: int) -> None:
        # The parser's own rules are unit-tested; here the question is the status code on the wire.
        try:
            canonical: str | None = canonical_request_id(request_id)
        except InvalidRequestId:
            canonical = None
        try:
            reply = client.add(request_id, a, b)
        except grpc.RpcError as exc:
            if canonical is None:
                assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT, exc
            elif not INT64_MIN <= a + b <= INT64_MAX:
                assert exc.code() == grpc.StatusCode.OUT_OF_RANGE, exc
            else:
                # Only an id already accepted with other operands may be refused as a conflict.
                assert exc.code() == grpc.StatusCode.ALREADY_EXISTS, exc
                assert operands.get(canonical, (a, b)) != (a, b), f"{request_id!r} refused on first use"
            return
        assert canonical is not None, f"{request_id!r} accepted"
        assert INT64_MIN <= a + b <= INT64_MAX
        assert reply.sum == a + b
        assert operands.get(canonical, (a, b)) == (a, b), f"{request_id!r} accepted with other operands"
        assert reply.replayed == (canonical in operands), (request_id, reply.replayed)
        operands.setdefault(canonical, (a, b))

    check()
    body = ledger.client.wait_count(len(operands))
    assert body["total"] == str(sum(a + b for a, b in operands.values()))


def test_rest_query_parameters_are_validated(topic: Topic, start_ledger: LedgerFactory) -> None:
    ledger = start_ledger(topic)

    @settings(max_examples=150, deadline=None)
    @given(
        params=st.dictionaries(
            st.sampled_from(["after", "limit", "cursor", "x"]),
            st.text(max_size=25) | st.integers(-5, 2000).map(str),
            max_size=3,
        )
    )
    def check(params: dict[str, str]) -> None:
        status, body = http_json(f"{ledger.url}/v1/entries?{urllib.parse.urlencode(params)}")
        assert status in (200, 400), body
        assert isinstance(body, dict)
        if status == 400:
            assert body["error"] == "bad_request" and body["message"]

    check()
    status, body = http_json(f"{ledger.url}/v1/entries?limit=5&limit=7")
    assert (status, body) == (400, {"error": "bad_request", "message": "limit must be given at most once"})
    # gunicorn refuses a request line over its limit before Flask sees it, as openapi.json documents.
    with pytest.raises(urllib.error.HTTPError) as too_long:
        urllib.request.urlopen(f"{ledger.url}/v1/entries?after={'0' * 5000}", timeout=5)
    assert too_long.value.code == 414
    for path in ("/nope", "/v1/total/extra", "/v2/total"):
        status, body = http_json(f"{ledger.url}{path}")
        assert status == 404 and body["error"] == "not_found"
