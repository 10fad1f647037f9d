"""The sum service's gRPC API (`Add`, and the standard health service) as one typed client."""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from distsum.v1 import sum_pb2, sum_pb2_grpc


class SumClient:
    """One channel to the sum service at `target` (`host:port`); close it, or use it in a `with`.
    `credentials` (distsum.tls.grpc_channel_credentials) for a service serving TLS; None for plaintext."""

    def __init__(self, target: str, credentials: grpc.ChannelCredentials | None = None) -> None:
        self.target = target
        self.channel = (
            grpc.secure_channel(target, credentials) if credentials else grpc.insecure_channel(target)
        )
        self.stub = sum_pb2_grpc.SumServiceStub(self.channel)

    def add(
        self, request_id: str, a: int, b: int, timeout: float = 10, metadata: Sequence[tuple[str, str]] = ()
    ) -> sum_pb2.AddResponse:
        """The reply, or grpc.RpcError with the status the contract names. `metadata`: e.g. a
        `traceparent` to continue the caller's trace."""
        reply: sum_pb2.AddResponse = self.stub.Add(
            sum_pb2.AddRequest(request_id=request_id, a=a, b=b), timeout=timeout, metadata=tuple(metadata)
        )
        return reply

    def health(self, service: str = "", timeout: float = 1.0) -> str | None:
        """The health status name (SERVING, NOT_SERVING, ...), or None if the server does not answer."""
        try:
            reply = health_pb2_grpc.HealthStub(self.channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout
            )
        except grpc.RpcError:
            return None
        return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> SumClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def health_status(
    target: str,
    service: str = "",
    timeout: float = 1.0,
    credentials: grpc.ChannelCredentials | None = None,
) -> str | None:
    """One health check on a channel of its own (a server that just came up is not hidden behind an old
    channel's reconnect backoff)."""
    with SumClient(target, credentials) as client:
        return client.health(service, timeout)
