"""gRPC entrypoint: maps the Add use case onto the wire, and wraps every call in its telemetry."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn

import grpc
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from distsum.domain import Int64Overflow, InvalidRequestId
from distsum.v1 import sum_pb2, sum_pb2_grpc
from sum_svc import metrics
from sum_svc.access import CallerCheck
from sum_svc.adding import Adder, KafkaUnavailable
from sum_svc.idempotency import RequestIdConflict
from sum_svc.limits import InFlightCap

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

# Probes call health every few seconds per pod: a span each would only bury the traces worth reading,
# and a busy service must still answer them (no in-flight cap).
HEALTH_PREFIX = "/grpc.health.v1.Health/"
TRACE_CONTEXT_KEYS = frozenset(("traceparent", "tracestate"))


class SumServicer(sum_pb2_grpc.SumServiceServicer):
    def __init__(self, adder: Adder, publish_timeout: float):
        self._adder = adder
        self._publish_timeout = publish_timeout

    async def Add(  # noqa: N802
        self, request: sum_pb2.AddRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> sum_pb2.AddResponse:
        remaining = context.time_remaining()
        timeout = (
            self._publish_timeout if remaining is None else max(0.0, min(remaining, self._publish_timeout))
        )
        try:
            result = await self._adder.add(request.request_id, request.a, request.b, timeout)
        except InvalidRequestId as exc:
            await _abort(context, grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        except Int64Overflow as exc:
            await _abort(context, grpc.StatusCode.OUT_OF_RANGE, str(exc))
        except RequestIdConflict as exc:
            metrics.CONFLICTS.inc()
            log.warning(
                "request_id reused with other operands",
                extra={"request_id": request.request_id, "a": request.a, "b": request.b},
            )
            await _abort(context, grpc.StatusCode.ALREADY_EXISTS, str(exc))
        except KafkaUnavailable as exc:
            reason = str(exc.__cause__ or exc)
            log.warning("event not acknowledged", extra={"request_id": request.request_id, "reason": reason})
            await _abort(context, grpc.StatusCode.UNAVAILABLE, str(exc))
        if result.replayed:
            metrics.REPLAYS.inc()
        if log.isEnabledFor(logging.DEBUG):
            log.debug("added", extra={"request_id": result.request_id, "replayed": result.replayed})
        return sum_pb2.AddResponse(sum=result.sum, replayed=result.replayed, request_id=result.request_id)


async def _abort(
    context: grpc.aio.ServicerContext[Any, Any], code: grpc.StatusCode, details: str
) -> NoReturn:
    await context.abort(code, details)
    raise AssertionError("abort() returned")  # it raises; this tells the type checker so


Behaviour = Callable[[Any, grpc.aio.ServicerContext[Any, Any]], Awaitable[Any]]


class TelemetryInterceptor(grpc.aio.ServerInterceptor):
    """One server span (except for health checks), a latency histogram, an in-flight gauge and a
    counter by status code for every unary call; on every unary call but health checks, the caller
    check (with mutual TLS) and the in-flight cap. Built per method once, so a call pays only for its
    own measurements."""

    def __init__(self, cap: InFlightCap, access: CallerCheck | None = None) -> None:
        self._cap = cap
        self._access = access
        self._wrapped: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        method = handler_call_details.method
        wrapped = self._wrapped.get(method)
        if wrapped is not None:
            return wrapped
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        behaviour = handler.unary_unary
        if not method.startswith(HEALTH_PREFIX):
            behaviour = self._cap.guard(behaviour)
            # Outside the cap: a caller that may not call never takes a slot.
            if self._access is not None:
                behaviour = self._access.guard(method, behaviour)
        wrapped = grpc.unary_unary_rpc_method_handler(
            # An aio server's handlers are coroutine functions; the stubs only know sync ones.
            _measured(method, behaviour),  # type: ignore[arg-type]
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
        self._wrapped[method] = wrapped
        return wrapped


def _measured(method: str, behaviour: Behaviour) -> Behaviour:
    in_flight = metrics.IN_FLIGHT.labels(method=method)
    duration = metrics.REQUEST_DURATION.labels(method=method)
    counters: dict[grpc.StatusCode, Any] = {}
    traced = not method.startswith(HEALTH_PREFIX)
    service, _, name = method.lstrip("/").partition("/")
    attributes = {"rpc.system": "grpc", "rpc.service": service, "rpc.method": name}

    def count(code: grpc.StatusCode) -> None:
        counter = counters.get(code)
        if counter is None:
            counter = counters[code] = metrics.REQUESTS.labels(method=method, code=code.name)
        counter.inc()

    async def measured(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        started = time.perf_counter()
        in_flight.inc()
        code = grpc.StatusCode.UNKNOWN
        span: trace.Span | None = None
        token = None
        if traced:
            span = tracer.start_span(
                method, context=_caller_context(context), kind=SpanKind.SERVER, attributes=attributes
            )
            token = otel_context.attach(trace.set_span_in_context(span))
        try:
            response = await behaviour(request, context)
            code = context.code() or grpc.StatusCode.OK
            return response
        except asyncio.CancelledError:
            code = grpc.StatusCode.CANCELLED
            raise
        except Exception:
            code = context.code() or grpc.StatusCode.UNKNOWN
            raise
        finally:
            in_flight.dec()
            duration.observe(time.perf_counter() - started)
            count(code)
            if span is not None:
                if span.is_recording():
                    span.set_attribute("rpc.grpc.status_code", code.value[0])
                    if code is not grpc.StatusCode.OK:
                        span.set_status(Status(StatusCode.ERROR, code.name))
                span.end()
                otel_context.detach(token)  # type: ignore[arg-type]  # set whenever span is

    return measured


def _caller_context(context: grpc.aio.ServicerContext[Any, Any]) -> otel_context.Context | None:
    """The caller's trace context from W3C metadata, if it sent any."""
    carrier = {key: value for key, value in context.invocation_metadata() or () if key in TRACE_CONTEXT_KEYS}
    return propagate.extract(carrier) if carrier else None
