"""The ledger's REST API fuzzed from its OpenAPI document (schemathesis) against the real gunicorn ledger:
no 5xx where the store is readable, and every response valid against the document."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig
from schemathesis.core.result import Ok

from distsum import event_codec
from distsum.domain import SumComputed
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
    ledger.wait_count(EVENTS)

    # Invalid data must be refused the documented ways only: 400 from the app, 414 from gunicorn for a
    # request line over its limit (schemathesis' default list would also pass 401, 403, 404, 422 ...).
    config = SchemathesisConfig.from_dict(
        {"checks": {"negative_data_rejection": {"expected-statuses": ["400", "414"]}}}
    )
    schema = schemathesis.openapi.from_url(f"{ledger.url}/openapi.json", config=config)
    operations = [result.ok() for result in schema.get_all_operations() if isinstance(result, Ok)]
    # schemathesis leaves out the endpoint that serves the document itself.
    assert {op.path for op in operations} == {"/v1/total", "/v1/entries", "/healthz", "/readyz", "/metrics"}
    cases = 0
    for operation in operations:
        # Invalid requests exist only where there is something to get wrong.
        modes = [GenerationMode.POSITIVE] + (
            [GenerationMode.NEGATIVE] if list(operation.iter_parameters()) else []
        )
        for mode in modes:

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=CASES // 2, deadline=None, suppress_health_check=list(HealthCheck))
            def call(case: Any) -> None:
                nonlocal cases
                cases += 1
                # Status codes, content types and bodies against the document; no 5xx (the store is fine).
                case.call_and_validate(base_url=ledger.url, timeout=10)

            call()
    assert cases >= CASES, f"only {cases} cases generated"
