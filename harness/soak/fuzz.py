"""Input fuzzing over the real wire, shared by the integration tests (few cases) and `make soak` (many).

gRPC: hypothesis draws request ids (UUIDs and arbitrary text) and int64 operands (with the edges); every
answer must be the contract's status for that input, never INTERNAL or UNKNOWN, and what was accepted
is what the checker later expects the ledger to hold. REST: schemathesis generates valid and invalid
requests from the ledger's OpenAPI document and validates every response against it."""

from __future__ import annotations

import json
import resource
import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import grpc
import schemathesis
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig
from schemathesis.core.result import Ok

from distsum.domain import INT64_MAX, INT64_MIN, InvalidRequestId, canonical_request_id
from distsum.v1 import sum_pb2, sum_pb2_grpc
from soak.checker import Sent

int64s = st.integers(INT64_MIN, INT64_MAX) | st.sampled_from([INT64_MIN, INT64_MAX, -1, 0, 1])
request_ids = st.uuids().map(str) | st.text(max_size=60)
REST_OPERATIONS = {"/v1/total", "/v1/entries", "/healthz", "/readyz"}


def allowed_statuses(request_id: str, a: int, b: int, known: dict[str, Sent]) -> frozenset[grpc.StatusCode]:
    """The contract's answers to Add(request_id, a, b) on the one replica that was sent `known` before."""
    try:
        canonical = canonical_request_id(request_id)
    except InvalidRequestId:
        return frozenset({grpc.StatusCode.INVALID_ARGUMENT})
    if not INT64_MIN <= a + b <= INT64_MAX:
        return frozenset({grpc.StatusCode.OUT_OF_RANGE})
    seen = known.get(canonical)
    if seen is None or (seen.a, seen.b) == (a, b):
        return frozenset({grpc.StatusCode.OK})
    if seen.acknowledged:
        return frozenset({grpc.StatusCode.ALREADY_EXISTS})
    # The first operands' outcome is unknown: the replica may or may not have recorded them.
    return frozenset({grpc.StatusCode.OK, grpc.StatusCode.ALREADY_EXISTS})


@dataclass
class GrpcFuzz:
    cases: int = 0
    codes: Counter[str] = field(default_factory=Counter)
    sent: dict[str, Sent] = field(default_factory=dict)  # what the ledger should hold afterwards
    wrong: list[str] = field(default_factory=list)  # answers the contract does not allow

    @property
    def ok(self) -> bool:
        return not self.wrong and self.codes["INTERNAL"] == self.codes["UNKNOWN"] == 0


def fuzz_grpc(target: str, cases: int, fuzz_seed: int, timeout: float = 10) -> GrpcFuzz:
    """`cases` generated Add calls against one sum service; nothing raised, everything recorded."""
    result = GrpcFuzz()
    stub = sum_pb2_grpc.SumServiceStub(grpc.insecure_channel(target))

    @seed(fuzz_seed)
    @settings(max_examples=cases, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(request_id=request_ids, a=int64s, b=int64s)
    def call(request_id: str, a: int, b: int) -> None:
        result.cases += 1
        allowed = allowed_statuses(request_id, a, b, result.sent)
        try:
            reply = stub.Add(sum_pb2.AddRequest(request_id=request_id, a=a, b=b), timeout=timeout)
            code = grpc.StatusCode.OK
        except grpc.RpcError as exc:
            code = exc.code()
        result.codes[code.name] += 1
        if code in {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}:
            record = result.sent.setdefault(canonical_request_id(request_id), Sent(a, b))
            if (record.a, record.b) != (a, b):
                record.conflicts.add((a, b))
            return  # outcome unknown: the checker allows it applied at most once
        if code not in allowed or (code == grpc.StatusCode.OK and reply.sum != a + b):
            if len(result.wrong) < 20:
                names = "/".join(sorted(c.name for c in allowed))
                result.wrong.append(f"Add({request_id!r}, {a}, {b}): {code.name}, expected {names}")
            return
        if code == grpc.StatusCode.OK:
            record = result.sent.setdefault(canonical_request_id(request_id), Sent(a, b))
            if (record.a, record.b) == (a, b):
                record.acknowledged = True
            else:  # an unknown-outcome id later accepted with other operands
                record.conflicts.add((a, b))
        elif code == grpc.StatusCode.ALREADY_EXISTS:
            result.sent[canonical_request_id(request_id)].conflicts.add((a, b))

    call()
    return result


def _failure_text(error: BaseException) -> str:
    """schemathesis' report of a failing case, without the (possibly huge) reproduction command."""
    text = str(error)
    return text.split("Reproduce with:", maxsplit=1)[0].strip()[:3000]


@dataclass
class RestFuzz:
    requests: int = 0
    failures: list[str] = field(default_factory=list)  # one per operation and mode that failed

    @property
    def ok(self) -> bool:
        return not self.failures


def fuzz_rest(url: str, examples: int, fuzz_seed: int | None = None) -> RestFuzz:
    """Up to `examples` generated requests per operation and mode (valid, and invalid where the
    operation has parameters) against the ledger at `url`, each response validated against the OpenAPI
    document (status, content type, body; no 5xx). A failure ends that operation and mode (hypothesis
    shrinks it first) and is recorded; the others still run. Operations without parameters run out of
    distinct requests early."""
    # Invalid data must be refused the documented ways only: 400 from the app, 414 from gunicorn for a
    # request line over its limit (schemathesis' default list would also pass 401, 403, 404, 422 ...).
    config = SchemathesisConfig.from_dict(
        {"checks": {"negative_data_rejection": {"expected-statuses": ["400", "414"]}}}
    )
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json", config=config)
    operations = [result.ok() for result in schema.get_all_operations() if isinstance(result, Ok)]
    # schemathesis leaves out the endpoint that serves the document itself.
    found = {op.path for op in operations}
    if found != REST_OPERATIONS:
        raise AssertionError(f"the OpenAPI document's operations are {sorted(found)}")
    plans = [
        (op, mode)
        for op in operations
        # Invalid requests exist only where there is something to get wrong.
        for mode in [GenerationMode.POSITIVE]
        + ([GenerationMode.NEGATIVE] if list(op.iter_parameters()) else [])
    ]
    result = RestFuzz()
    for operation, mode in plans:

        @settings(
            max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def call(case: Any) -> None:
            result.requests += 1
            case.call_and_validate(base_url=url, timeout=10)

        if fuzz_seed is not None:
            call = seed(fuzz_seed)(call)
        try:
            call()
        except (AssertionError, BaseExceptionGroup) as error:  # schemathesis' FailureGroup included
            result.failures.append(
                f"{operation.method.upper()} {operation.path} ({mode.value}): {_failure_text(error)}"
            )
    return result


REST_MEMORY_CAP = 4 * 2**30


def main(argv: list[str]) -> int:
    """`python -m soak.fuzz URL EXAMPLES SEED`: fuzz_rest in a process of its own, capped at 4 GiB of
    address space (a long schemathesis run against a large ledger once took 24 GB and the OOM killer
    ended the whole soak); prints the result as JSON."""
    resource.setrlimit(resource.RLIMIT_AS, (REST_MEMORY_CAP, REST_MEMORY_CAP))
    url, examples, fuzz_seed = argv[0], int(argv[1]), int(argv[2])
    result = fuzz_rest(url, examples, fuzz_seed)
    print(json.dumps({"requests": result.requests, "ok": result.ok, "failures": result.failures}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
