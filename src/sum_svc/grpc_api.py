"""gRPC entrypoint: maps the Add use case onto the wire and its errors onto status codes."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import grpc

from distsum.domain import Int64Overflow, InvalidRequestId
from distsum.v1 import sum_pb2, sum_pb2_grpc
from sum_svc import metrics
from sum_svc.adding import Adder, KafkaUnavailable
from sum_svc.idempotency import RequestIdConflict

log = logging.getLogger(__name__)


class SumServicer(sum_pb2_grpc.SumServiceServicer):
    def __init__(self, adder: Adder, publish_timeout: float):
        self._adder = adder
        self._publish_timeout = publish_timeout

    def Add(self, request: sum_pb2.AddRequest, context: grpc.ServicerContext) -> sum_pb2.AddResponse:  # noqa: N802
        remaining = context.time_remaining()
        timeout = (
            self._publish_timeout if remaining is None else max(0.0, min(remaining, self._publish_timeout))
        )
        try:
            result = self._adder.add(request.request_id, request.a, request.b, timeout)
        except InvalidRequestId as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        except Int64Overflow as exc:
            context.abort(grpc.StatusCode.OUT_OF_RANGE, str(exc))
        except RequestIdConflict as exc:
            metrics.CONFLICTS.inc()
            log.warning("request_id reused with other operands", extra={"request_id": request.request_id})
            context.abort(grpc.StatusCode.ALREADY_EXISTS, str(exc))
        except KafkaUnavailable as exc:
            log.warning(
                "event not acknowledged", extra={"request_id": request.request_id, "reason": str(exc)}
            )
            context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
        if result.replayed:
            metrics.REPLAYS.inc()
        log.debug("added", extra={"request_id": result.request_id, "replayed": result.replayed})
        return sum_pb2.AddResponse(sum=result.sum, replayed=result.replayed, request_id=result.request_id)


class MetricsInterceptor(grpc.ServerInterceptor):
    """Counts, times and tracks in-flight unary calls by method and final status code."""

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        method = handler_call_details.method
        behaviour = handler.unary_unary

        def measured(request: Any, context: grpc.ServicerContext) -> Any:
            started = time.perf_counter()
            in_flight = metrics.IN_FLIGHT.labels(method=method)
            in_flight.inc()
            code = grpc.StatusCode.UNKNOWN
            try:
                response = behaviour(request, context)
                # ServicerContext.code() exists since grpcio 1.38; the type stubs lag behind.
                code = context.code() or grpc.StatusCode.OK  # type: ignore[attr-defined]
                return response
            except Exception:
                code = context.code() or grpc.StatusCode.UNKNOWN  # type: ignore[attr-defined]
                raise
            finally:
                in_flight.dec()
                metrics.REQUEST_DURATION.labels(method=method).observe(time.perf_counter() - started)
                metrics.REQUESTS.labels(method=method, code=code.name).inc()

        return grpc.unary_unary_rpc_method_handler(
            measured,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
