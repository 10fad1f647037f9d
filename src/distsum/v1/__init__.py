"""Generated protobuf and gRPC code for the distsum.v1 API (see proto/; regenerate with `make proto`)."""
