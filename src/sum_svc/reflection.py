"""gRPC server reflection that load and debugging tools can use by reflection alone.

grpcio-reflection serves only grpc.reflection.v1alpha, and cannot resolve a method's symbol
(distsum.v1.SumService.Add), which grpcurl `describe` and ghz `--call` ask for. This servicer answers
method symbols with their service's file, and is also served as grpc.reflection.v1, whose messages are
the same on the wire."""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf import descriptor_pool
from grpc_reflection.v1alpha import reflection, reflection_pb2

V1_SERVICE_NAME = "grpc.reflection.v1.ServerReflection"


class MethodAwareReflection(reflection.aio.ReflectionServicer):  # type: ignore[misc]  # untyped base
    def _file_containing_symbol(self, request: Any, fully_qualified_name: str) -> Any:
        service, _, method = fully_qualified_name.rpartition(".")
        try:
            found = descriptor_pool.Default().FindServiceByName(service)
        except KeyError:
            found = None
        if found is not None and method in found.methods_by_name:
            fully_qualified_name = service
        return super()._file_containing_symbol(request, fully_qualified_name)


def enable(server: grpc.aio.Server, service_names: tuple[str, ...]) -> None:
    """Serve reflection (v1 and v1alpha) listing service_names and both reflection services."""
    names = (*service_names, V1_SERVICE_NAME, reflection.SERVICE_NAME)
    servicer = MethodAwareReflection(names)
    for service in (V1_SERVICE_NAME, reflection.SERVICE_NAME):
        handler = grpc.stream_stream_rpc_method_handler(
            servicer.ServerReflectionInfo,
            request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
            response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
        )
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(service, {"ServerReflectionInfo": handler}),)
        )
