"""Who may call: the caller's certificate identities against TLS_ALLOWED_CLIENTS, and an audit line per
identity and method.

The TLS handshake has already verified the certificate (mutual TLS), so what is left is authorisation:
a call from an identity not allowed is answered PERMISSION_DENIED with the identity it came as, counted
and logged. The audit trail is aggregated so that it costs the hot path a dict lookup: the first call of
each identity and method is logged, then at most one line a minute, carrying how many calls it covers.
"""

from __future__ import annotations

import logging
from typing import Any

import grpc

from distsum import tls
from distsum.logs import ThrottledLog
from sum_svc import metrics

log = logging.getLogger(__name__)
audit_log = logging.getLogger("sum_svc.audit")

AUDIT_INTERVAL_SECONDS = 60.0

Behaviour = Any  # an aio unary behaviour: async (request, context) -> response


class CallerCheck:
    def __init__(self, allowed: tuple[str, ...]) -> None:
        self._any = tls.ANY_CLIENT in allowed
        self._allowed = frozenset(allowed)
        self._denied = metrics.REFUSED.labels(reason="permission_denied")
        self._unauthenticated = metrics.REFUSED.labels(reason="unauthenticated")
        self._refusals = ThrottledLog(log, interval=10.0)
        self._audit = ThrottledLog(audit_log, interval=AUDIT_INTERVAL_SECONDS)

    def guard(self, method: str, behaviour: Behaviour) -> Behaviour:
        async def checked(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            identities = tls.grpc_identities(context)
            if not identities:
                # Only a server without client authentication lets such a caller through the handshake.
                self._unauthenticated.inc()
                await context.abort(
                    grpc.StatusCode.UNAUTHENTICATED,
                    "a client certificate is required: connect with mutual TLS",
                )
            identity = identities[0]
            if not (self._any or not self._allowed.isdisjoint(identities)):
                self._denied.inc()
                self._refusals.log(
                    logging.WARNING,
                    f"denied {identity} {method}",
                    "call refused: identity not allowed",
                    {"identity": identity, "method": method, "peer": context.peer()},
                )
                await context.abort(
                    grpc.StatusCode.PERMISSION_DENIED,
                    f"the identity {identity} may not call {method}: ask for it to be added to the "
                    "service's allowed clients",
                )
            self._audit.log(
                logging.INFO, f"{identity} {method}", "audit: call", {"identity": identity, "method": method}
            )
            return await behaviour(request, context)

        return checked
