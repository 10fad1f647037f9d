"""Tracing set-up and W3C trace context on Kafka headers.

Every span has real ids, so every log line and every Kafka record carries a trace id.
Spans are recorded and exported only when the standard OTEL_* variables ask for an
exporter (sampled as OTEL_TRACES_SAMPLER says); without one, the sampler drops them
at creation, so a call pays for its ids and nothing more.
The export path itself is the opentelemetry-distro configurator, so every
standard variable (endpoint, protocol, headers, sampler, resource) works as
documented upstream instead of through options of ours.
"""

from __future__ import annotations

import os

from opentelemetry import context, propagate, trace
from opentelemetry.distro import OpenTelemetryConfigurator, OpenTelemetryDistro
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

HeaderValue = str | bytes | None
KafkaHeaders = list[tuple[str, HeaderValue]] | dict[str, HeaderValue]

_EXPORT_SWITCHES = (
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_TRACES_EXPORTER",
)


def exporting_requested() -> bool:
    return any(os.environ.get(name) for name in _EXPORT_SWITCHES)


def configure_tracing(service_name: str, *, edge: bool = False) -> None:
    """Install the global tracer provider; call once per process (after fork for gunicorn workers).

    edge: this process is where callers come in (the sum service). It decides head sampling itself, so
    a caller's `traceparent` cannot force recording (sampled=1 on every call would defeat the configured
    ratio and cost every hop an export) nor suppress it; the caller's trace id is kept either way.
    """
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return
    os.environ.setdefault("OTEL_SERVICE_NAME", service_name)
    if edge:
        # The SDK's default is parentbased_always_on. The parent-based samplers obey the caller's flag;
        # their root samplers (always_on, always_off, traceidratio) decide from the trace id alone.
        sampler = os.environ.get("OTEL_TRACES_SAMPLER", "").strip() or "parentbased_always_on"
        os.environ["OTEL_TRACES_SAMPLER"] = sampler.removeprefix("parentbased_")
    if not exporting_requested():
        trace.set_tracer_provider(TracerProvider(sampler=ALWAYS_OFF, resource=Resource.create()))
        return
    # Traces only: metrics are scraped by Prometheus and logs are collected from stderr.
    os.environ.setdefault("OTEL_METRICS_EXPORTER", "none")
    os.environ.setdefault("OTEL_LOGS_EXPORTER", "none")
    OpenTelemetryDistro().configure()
    OpenTelemetryConfigurator().configure()


def shutdown_tracing() -> None:
    provider = trace.get_tracer_provider()
    if isinstance(provider, TracerProvider):
        provider.shutdown()


def headers_for_span(span: trace.Span) -> list[tuple[str, HeaderValue]]:
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=trace.set_span_in_context(span))
    return [(key, value.encode()) for key, value in carrier.items()]


def context_from_headers(headers: KafkaHeaders | None) -> context.Context:
    carrier: dict[str, str] = {}
    pairs = headers.items() if isinstance(headers, dict) else headers or ()
    for key, value in pairs:
        if value is None:
            continue
        try:
            carrier[key.lower()] = value.decode() if isinstance(value, bytes) else value
        except UnicodeDecodeError:
            continue
    return propagate.extract(carrier)
