"""Local development stack: a real Apache Kafka broker and the project's services."""

import os

# The harness starts processes (fork, a preexec_fn, exec) from processes whose threads call into gRPC.
# gRPC's fork handlers then run in the child before exec and can abort it (seen: a ledger start dying
# with SIGABRT, "Epoll1Poller ... epoll_wait error: Bad file descriptor"). Every child execs at once and
# uses no gRPC of its parent's, so the handlers have nothing to protect. Read when gRPC initialises,
# which is after this package is imported by every harness entrypoint and by tests/conftest.py.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
