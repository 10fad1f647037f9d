"""Who may call the sum service: the caller's certificate identities against TLS_ALLOWED_CLIENTS
(distsum.tls.Admission), answered in gRPC statuses.

The TLS handshake has already verified the certificate (mutual TLS); a call from an identity not allowed
is answered PERMISSION_DENIED with the identity it came as.
"""

from __future__ import annotations

import logging
from typing import Any

import grpc

from distsum import tls
from sum_svc import metrics

Behaviour = Any  # an aio unary behaviour: async (request, context) -> response


class CallerCheck:
    def __init__(self, allowed: tuple[str, ...]) -> None:
        self._admission = tls.Admission(
            allowed, metrics.REFUSED, logging.getLogger(__name__), logging.getLogger("sum_svc.audit")
        )

    def guard(self, method: str, behaviour: Behaviour) -> Behaviour:
        async def checked(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            identities = tls.grpc_identities(context)
            if self._admission.admit(identities, method, context.peer) is None:
                if not identities:
                    # Only a server without client authentication lets such a caller through the handshake.
                    await context.abort(grpc.StatusCode.UNAUTHENTICATED, tls.UNAUTHENTICATED_MESSAGE)
                await context.abort(
                    grpc.StatusCode.PERMISSION_DENIED, tls.denied_message(identities[0], f"call {method}")
                )
            return await behaviour(request, context)

        return checked
