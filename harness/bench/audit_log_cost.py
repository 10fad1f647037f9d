"""What the audit trail costs an admitted call: distsum.tls.Admission.admit, the rule both services run on
every call (identity check plus the aggregated audit line), timed in this process. The TLS comparison
measures the whole of mutual TLS end to end; this isolates the part that runs per call in Python."""

from __future__ import annotations

import logging
import time

from prometheus_client import CollectorRegistry, Counter

from distsum.tls import Admission

CALLS = 200_000


def admitted_call_us(calls: int = CALLS) -> float:
    """Microseconds per admitted call, over `calls` calls of one identity and target (after the first,
    which writes its audit line, every call is aggregated into the minute's line, as in the services)."""
    refused = Counter("bench_refused", "unused", ["reason"], registry=CollectorRegistry())
    audit = logging.getLogger("bench.audit_log_cost")
    audit.propagate = False
    audit.addHandler(logging.NullHandler())
    admission = Admission(("spiffe://distsum.local/bench",), refused, audit, audit)
    identities = ("spiffe://distsum.local/bench",)

    def peer() -> str:
        return "ipv4:127.0.0.1:1"

    start = time.perf_counter()
    for _ in range(calls):
        admission.admit(identities, "/distsum.v1.SumService/Add", peer)
    return (time.perf_counter() - start) / calls * 1e6
