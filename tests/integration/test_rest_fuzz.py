"""The ledger's REST API fuzzed from its OpenAPI document (schemathesis) against the real gunicorn ledger:
no 5xx where the store is readable, and every response valid against the document (soak.fuzz, which
`make soak` runs longer)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from distsum import event_codec
from distsum.domain import SumComputed
from soak.fuzz import fuzz_rest
from tests.conftest import Topic
from tests.integration.conftest import LedgerFactory, producer

CASES = 1000
EVENTS = 30


def test_every_generated_request_gets_a_documented_answer(topic: Topic, start_ledger: LedgerFactory) -> None:
    kafka = producer(topic.bootstrap)
    for n in range(EVENTS):  # something to page through, and a total beyond int64
        a, b = 2**62, 2**62 - 1 - n
        event = SumComputed(str(uuid.uuid4()), a, b, a + b, datetime.now(UTC))
        kafka.produce(topic.name, key=event.request_id.encode(), value=event_codec.encode(event))
    assert kafka.flush(30) == 0
    ledger = start_ledger(topic)
    ledger.client.wait_count(EVENTS)

    result = fuzz_rest(ledger.url, CASES // 2)

    assert result.ok, "\n\n".join(result.failures)
    assert result.requests >= CASES, f"only {result.requests} cases generated"
