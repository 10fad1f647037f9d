"""make soak: a long run of the local stack under every fault at once, checked through the contract."""

import os

# The soak starts processes (fork + exec) from a process whose threads are calling into gRPC; gRPC's
# fork handlers would only log that they skip themselves, once per start.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
