"""The client certificates the chart issues (Secret <fullname>-client-<name>), used as NOTES.txt tells
users to: saved to files, then presented by the typed clients or mounted into a Job's pod."""

from __future__ import annotations

import base64
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from distsum import tls
from distsum.clients.ledger import LedgerClient, Total
from distsum.clients.sum_service import SumClient, health_status
from distsum.clients.waiting import wait_until

MOUNT = "/etc/distsum/tls"
FILES = ("ca.crt", "tls.crt", "tls.key")


def client_secret(core: Any, namespace: str, release: str, identity: str, timeout: float = 60) -> Any:
    """The release's Secret holding the client certificate of `identity`."""

    def found() -> Any:
        secrets = core.list_namespaced_secret(
            namespace, label_selector=f"app.kubernetes.io/instance={release},app.kubernetes.io/component=tls"
        ).items
        named = [s for s in secrets if s.metadata.name.endswith(f"-client-{identity}")]
        return named[0] if len(named) == 1 else None

    return wait_until(found, timeout, f"the client certificate of {identity} in {namespace}", 1.0)


@dataclass(frozen=True)
class ClientCertificate:
    identity: str
    secret: str
    directory: Path

    @classmethod
    def fetch(
        cls, core: Any, namespace: str, release: str, identity: str, directory: Path
    ) -> ClientCertificate:
        secret = client_secret(core, namespace, release, identity)
        directory.mkdir(parents=True, exist_ok=True)
        for name in FILES:
            path = directory / name
            path.write_bytes(base64.b64decode(secret.data[name]))
            path.chmod(0o600)
        return cls(identity, secret.metadata.name, directory)

    def file(self, name: str) -> Path:
        return self.directory / name

    def grpc_credentials(self) -> grpc.ChannelCredentials:
        return tls.grpc_channel_credentials(self.file("ca.crt"), self.file("tls.crt"), self.file("tls.key"))

    def ssl_context(self) -> ssl.SSLContext:
        return tls.client_ssl_context(self.file("ca.crt"), self.file("tls.crt"), self.file("tls.key"))

    def sum_client(self, target: str) -> SumClient:
        return SumClient(target, self.grpc_credentials())

    def health(self, target: str, service: str = "") -> str | None:
        return health_status(target, service, credentials=self.grpc_credentials())

    def ledger(self, target: str) -> LedgerClient:
        return LedgerClient(f"https://{target}", context=self.ssl_context())

    def total(self, target: str) -> Total:
        return self.ledger(target).total()

    def served_certificate(self, target: str, alpn: str) -> bytes:
        """The DER certificate the server at `target` presents in a fresh handshake as this client."""
        host, port = target.rsplit(":", 1)
        context = self.ssl_context()
        context.set_alpn_protocols([alpn])
        with (
            socket.create_connection((host, int(port)), timeout=10) as raw,
            context.wrap_socket(raw, server_hostname=host) as conn,
        ):
            der = conn.getpeercert(binary_form=True)
        assert der, f"{target} presented no certificate"
        return der

    def job_labels(self) -> dict[str, str]:
        """What the chart's NetworkPolicies admit to the APIs this identity may call."""
        return {"distributed-sum/client": self.identity}

    def job_volume(self) -> dict[str, Any]:
        return {"name": "tls", "secret": {"secretName": self.secret, "defaultMode": 0o440}}
