"""One trace runs gRPC → Kafka → ledger commit, exported over OTLP by the real processes."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass

import grpc
import pytest
from confluent_kafka import Consumer
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from distsum.clients.waiting import wait_until
from localstack.ports import free_port
from tests.conftest import Topic
from tests.integration.conftest import LedgerFactory, SumServiceFactory
from tests.services import new_id


@dataclass(frozen=True)
class ReceivedSpan:
    service: str
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str


class Collector(trace_service_pb2_grpc.TraceServiceServicer):
    """An OTLP/gRPC trace receiver that keeps what it is sent."""

    def __init__(self) -> None:
        self.spans: list[ReceivedSpan] = []
        self._lock = threading.Lock()

    def Export(  # noqa: N802
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: grpc.ServicerContext
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        with self._lock:
            for resource_spans in request.resource_spans:
                attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
                for scope_spans in resource_spans.scope_spans:
                    self.spans.extend(
                        ReceivedSpan(
                            attributes.get("service.name", ""),
                            span.name,
                            span.trace_id.hex(),
                            span.span_id.hex(),
                            span.parent_span_id.hex(),
                        )
                        for span in scope_spans.spans
                    )
        return trace_service_pb2.ExportTraceServiceResponse()

    def find(self, service: str, name: str, trace_id: str | None = None) -> ReceivedSpan | None:
        with self._lock:
            return next(
                (
                    s
                    for s in self.spans
                    if s.service == service and s.name == name and trace_id in (None, s.trace_id)
                ),
                None,
            )


@pytest.fixture
def collector() -> Iterator[tuple[Collector, str]]:
    receiver = Collector()
    server = grpc.server(futures.ThreadPoolExecutor(4))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(receiver, server)
    port = free_port()
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    yield receiver, f"http://127.0.0.1:{port}"
    server.stop(None)


def test_one_trace_spans_the_grpc_call_and_the_ledger_apply(
    topic: Topic,
    start_sum_service: SumServiceFactory,
    start_ledger: LedgerFactory,
    collector: tuple[Collector, str],
) -> None:
    receiver, endpoint = collector
    otel = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_EXPORTER_OTLP_INSECURE": "true",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
    }
    ledger = start_ledger(topic, **otel)
    service = start_sum_service(topic, LOG_LEVEL="DEBUG", **otel)
    client = service.client()

    client.add(new_id(), 20, 22)
    ledger.client.wait_count(1)

    server_span = wait_until(
        lambda: receiver.find("sum-svc", "/distsum.v1.SumService/Add"), 30, "the sum service's server span"
    )
    publish = wait_until(
        lambda: receiver.find("sum-svc", f"{topic.name} publish", server_span.trace_id),
        30,
        "the publish span",
    )
    process = wait_until(
        lambda: receiver.find("ledger", f"{topic.name} process", server_span.trace_id),
        30,
        "the ledger's span",
    )
    assert publish.parent_span_id == server_span.span_id
    assert process.parent_span_id == publish.span_id
    log_lines = [
        json.loads(line) for line in service.process.log_path.read_text().splitlines() if line.startswith("{")
    ]
    added = next(line for line in log_lines if line["msg"] == "added")
    assert (added["trace_id"], added["span_id"]) == (server_span.trace_id, server_span.span_id)


def test_the_sum_service_decides_sampling_whatever_the_caller_asks(
    topic: Topic, start_sum_service: SumServiceFactory, collector: tuple[Collector, str]
) -> None:
    """At a 50 % ratio a trace is sampled when the low 64 bits of its id are below 2^63. A caller asking
    for a trace above that (sampled=01) is not recorded; one below it that says not sampled (00) is."""
    receiver, endpoint = collector
    service = start_sum_service(
        topic,
        OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
        OTEL_EXPORTER_OTLP_INSECURE="true",
        OTEL_BSP_SCHEDULE_DELAY="100",
        OTEL_TRACES_SAMPLER="parentbased_traceidratio",
        OTEL_TRACES_SAMPLER_ARG="0.5",
    )
    forced, declined = "4bf92f3577b34da7fffffffffffffffe", "4bf92f3577b34da60000000000000001"
    with service.client() as client:
        client.add(new_id(), 1, 2, metadata=[("traceparent", f"00-{forced}-00f067aa0ba902b7-01")])
        client.add(new_id(), 3, 4, metadata=[("traceparent", f"00-{declined}-00f067aa0ba902b7-00")])
    add = "/distsum.v1.SumService/Add"
    wait_until(lambda: receiver.find("sum-svc", add, declined), 30, "the span the service chose to sample")
    # Spans are exported in the order they ended, so the earlier call's span would be here by now.
    assert receiver.find("sum-svc", add, forced) is None


def test_without_an_exporter_the_callers_trace_id_still_reaches_the_logs_and_the_record(
    topic: Topic, start_sum_service: SumServiceFactory
) -> None:
    """No span is recorded without an exporter, yet logs and the Kafka record carry the trace id."""
    service = start_sum_service(topic, LOG_LEVEL="DEBUG")
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    traceparent = f"00-{trace_id}-00f067aa0ba902b7-01"
    request_id = new_id()
    service.client().add(request_id, 1, 2, metadata=(("traceparent", traceparent),))

    consumer = Consumer(
        {"bootstrap.servers": topic.bootstrap, "group.id": new_id(), "auto.offset.reset": "earliest"}
    )
    consumer.subscribe([topic.name])
    try:
        record = wait_until(lambda: consumer.poll(0.5), 30, "the published record")
    finally:
        consumer.close()
    headers = dict(record.headers() or [])
    published = headers["traceparent"]
    assert isinstance(published, bytes)
    published = published.decode()
    assert published.split("-")[1] == trace_id
    assert published.endswith("-00")  # not sampled: nothing was recorded or exported

    log_lines = [
        json.loads(line) for line in service.process.log_path.read_text().splitlines() if line.startswith("{")
    ]
    added = next(line for line in log_lines if line["msg"] == "added" and line["request_id"] == request_id)
    assert added["trace_id"] == trace_id
