"""gRPC server reflection that load and debugging tools can use by reflection alone.

grpcio-reflection serves only grpc.reflection.v1alpha, and cannot resolve a method's symbol
(distsum.v1.SumService.Add), which grpcurl `describe` and ghz `--call` ask for. This servicer answers
method symbols with their service's file, and is also served as grpc.reflection.v1, whose messages are
the same on the wire. grpcio-reflection has no descriptor of the v1 service, so a tool that describes
every listed service (grpcurl describe, grpcui) failed on it; a copy of the v1alpha file renamed to
grpc.reflection.v1 (the upstream v1 file differs only in its package) is registered for it."""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import reflection, reflection_pb2

V1_PACKAGE = "grpc.reflection.v1"
V1_SERVICE_NAME = f"{V1_PACKAGE}.ServerReflection"


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


def _register_v1_descriptor() -> None:
    pool = descriptor_pool.Default()
    try:
        pool.FindServiceByName(V1_SERVICE_NAME)
        return
    except KeyError:
        pass
    v1alpha = reflection_pb2.DESCRIPTOR.package
    file = descriptor_pb2.FileDescriptorProto()
    reflection_pb2.DESCRIPTOR.CopyToProto(file)
    file.name = "grpc/reflection/v1/reflection.proto"  # the upstream file's name
    file.package = V1_PACKAGE
    file.ClearField("options")

    def renamed(type_name: str) -> str:
        return type_name.replace(f".{v1alpha}.", f".{V1_PACKAGE}.", 1)

    for message in file.message_type:
        for field in message.field:
            if field.HasField("type_name"):  # message and enum fields only
                field.type_name = renamed(field.type_name)
    for service in file.service:
        for method in service.method:
            method.input_type = renamed(method.input_type)
            method.output_type = renamed(method.output_type)
    pool.AddSerializedFile(file.SerializeToString())


def enable(server: grpc.aio.Server, service_names: tuple[str, ...]) -> None:
    """Serve reflection (v1 and v1alpha) listing service_names and both reflection services."""
    _register_v1_descriptor()
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
