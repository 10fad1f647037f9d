"""TLS for the services' API ports: settings, certificate files picked up again when they change (no
restart), and the caller's identities from its client certificate.

Identities are a certificate's subject alternative names (DNS, URI such as a SPIFFE id, e-mail) and its
common name, matched exactly against TLS_ALLOWED_CLIENTS.
"""

from __future__ import annotations

import logging
import os
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import grpc
from cryptography import x509
from prometheus_client import Counter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from pydantic import field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from distsum.logs import ThrottledLog

log = logging.getLogger(__name__)

ANY_CLIENT = "*"

RELOADS = Counter(
    "distsum_tls_certificate_reloads_total",
    "Certificate files read again after they changed, by result (loaded, refused: the old ones stay).",
    ["result"],
)


class TlsSettings(BaseSettings):
    """TLS of this service's API port (TLS_*): on with a key pair; mutual with a client CA."""

    model_config = SettingsConfigDict(env_prefix="TLS_", extra="ignore", frozen=True)

    enabled: bool = False
    cert_file: Path = Path("/etc/distsum/tls/tls.crt")
    key_file: Path = Path("/etc/distsum/tls/tls.key")
    client_ca_file: Path = Path("/etc/distsum/tls/ca.crt")
    # Mutual TLS: callers present a certificate issued by client_ca_file. Off only where a service mesh
    # authenticates callers instead.
    client_auth: bool = True
    # Who may call: identities matched exactly, comma-separated; "*" admits any certificate of the CA.
    allowed_clients: Annotated[tuple[str, ...], NoDecode] = ()

    @field_validator("allowed_clients", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @model_validator(mode="after")
    def _complete(self) -> TlsSettings:
        if not self.enabled:
            return self
        files = [self.cert_file, self.key_file] + [self.client_ca_file] * self.client_auth
        missing = [str(path) for path in files if not os.access(path, os.R_OK)]
        if missing:
            raise ValueError(f"TLS is enabled but these files cannot be read: {', '.join(missing)}")
        if self.client_auth and not self.allowed_clients:
            raise ValueError(
                "TLS_ALLOWED_CLIENTS names nobody, so no caller could be let in: list the identities that "
                "may call (certificate SAN or common name, comma-separated), or * for any certificate "
                "of TLS_CLIENT_CA_FILE"
            )
        return self


@dataclass(frozen=True)
class Material:
    cert_chain: bytes
    private_key: bytes
    client_ca: bytes | None


class CertificateFiles:
    """The key pair (and client CA) of a TlsSettings, read again once any of the files changed.

    Kubernetes replaces a mounted Secret's files in one step (a symlink swap), which changes their
    inode and modification time; a pair that does not match (caught mid-write) is refused and the
    files are tried again on the next check."""

    def __init__(self, settings: TlsSettings) -> None:
        self._settings = settings
        self._paths = [settings.cert_file, settings.key_file]
        if settings.client_auth:
            self._paths.append(settings.client_ca_file)
        self._lock = threading.Lock()
        self._stamp: tuple[tuple[int, int, int], ...] | None = None
        # The state of the files last refused: not read again (each handshake asks) until they change.
        self._refused: tuple[tuple[int, int, int], ...] | None = None

    def _stamp_now(self) -> tuple[tuple[int, int, int], ...]:
        stats = [path.stat() for path in self._paths]
        return tuple((s.st_ino, s.st_mtime_ns, s.st_size) for s in stats)

    def load(self) -> Material:
        """Read and check the files; raise ValueError naming what is wrong."""
        stamp = self._stamp_now()
        try:
            # Checks that the key belongs to the certificate, as the handshake will need.
            ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(
                self._settings.cert_file, self._settings.key_file
            )
            if self._settings.client_auth:
                ssl.create_default_context(cafile=self._settings.client_ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(f"the TLS files are not a usable key pair and CA: {exc}") from exc
        material = Material(
            self._settings.cert_file.read_bytes(),
            self._settings.key_file.read_bytes(),
            self._settings.client_ca_file.read_bytes() if self._settings.client_auth else None,
        )
        self._stamp = stamp
        return material

    def load_if_changed(self) -> Material | None:
        """New material when the files changed since the last load and are usable, else None."""
        with self._lock:
            stamp = None
            try:
                stamp = self._stamp_now()
                if stamp in (self._stamp, self._refused):
                    return None
                material = self.load()
            except (OSError, ValueError) as exc:
                self._refused = stamp
                RELOADS.labels(result="refused").inc()
                log.error(
                    "TLS files changed but cannot be used; keeping the current ones",
                    extra={"detail": str(exc)},
                )
                return None
        RELOADS.labels(result="loaded").inc()
        log.info("TLS certificate files reloaded", extra={"cert_file": str(self._settings.cert_file)})
        return material


class CertificateExpiry(Collector):
    """distsum_tls_certificate_expiry_timestamp_seconds{role="server"}: when the certificate in the
    served file expires, read at each scrape. Every handshake takes that file once it changed, so its
    expiry is the one callers meet; read here rather than remembered at load time, it needs no
    agreement between the ledger's processes and is never stale in an idle one. A file caught
    mid-rotation gives no sample that scrape."""

    NAME = "distsum_tls_certificate_expiry_timestamp_seconds"

    def __init__(self, cert_file: Path) -> None:
        self._cert_file = cert_file

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            served = x509.load_pem_x509_certificate(self._cert_file.read_bytes())
        except (OSError, ValueError):
            return
        family = GaugeMetricFamily(
            self.NAME,
            "When the certificate the API port presents expires (its notAfter, Unix seconds).",
            labels=["role"],
        )
        family.add_metric(["server"], served.not_valid_after_utc.timestamp())
        yield family


def _grpc_config(material: Material) -> Any:
    return grpc.ssl_server_certificate_configuration(
        [(material.private_key, material.cert_chain)], root_certificates=material.client_ca
    )


def grpc_server_credentials(settings: TlsSettings) -> grpc.ServerCredentials:
    """Server credentials whose certificates follow the files: gRPC asks before each new handshake.

    grpcio can only require a client certificate or not ask for one, so with client_auth a caller
    without a valid certificate is refused in the handshake (the caller sees UNAVAILABLE), before any
    call exists to answer UNAUTHENTICATED."""
    files = CertificateFiles(settings)
    initial = _grpc_config(files.load())

    def fetch() -> Any:
        material = files.load_if_changed()
        return None if material is None else _grpc_config(material)

    return grpc.dynamic_ssl_server_credentials(
        initial, fetch, require_client_authentication=settings.client_auth
    )


def grpc_identities(context: grpc.ServicerContext | Any) -> tuple[str, ...]:
    """The caller's certificate identities: subject alternative names, then the common name."""
    auth = context.auth_context()
    names = [*auth.get("x509_subject_alternative_name", ()), *auth.get("x509_common_name", ())]
    return tuple(name.decode(errors="replace") for name in names)


def certificate_identities(peer_certificate: dict[str, Any]) -> tuple[str, ...]:
    """The identities of a certificate as Python's ssl reports it (getpeercert()): subject alternative
    names, then the common name; empty when the peer sent none."""
    names = [str(value) for _, value in peer_certificate.get("subjectAltName", ())]
    names += [
        str(value) for rdn in peer_certificate.get("subject", ()) for key, value in rdn if key == "commonName"
    ]
    return tuple(names)


class ReloadingSslContext:
    """A server's ssl.SSLContext, built again by `build` once the files changed: ask for it per connection
    (gunicorn's ssl_context hook is called for each one). A stat of the files is all a connection pays."""

    def __init__(self, settings: TlsSettings, build: Callable[[], ssl.SSLContext]) -> None:
        self._files = CertificateFiles(settings)
        self._files.load()
        self._build = build
        self._context = build()

    def current(self) -> ssl.SSLContext:
        if self._files.load_if_changed() is not None:
            self._context = self._build()
        return self._context


def client_ssl_context(
    ca_file: Path | None, cert_file: Path | None = None, key_file: Path | None = None
) -> ssl.SSLContext:
    """An https client's context: trusting ca_file (None: the system's CAs), presenting cert_file."""
    context = ssl.create_default_context(cafile=ca_file)
    if cert_file is not None:
        context.load_cert_chain(cert_file, key_file)
    return context


def grpc_channel_credentials(
    ca_file: Path | None, cert_file: Path | None = None, key_file: Path | None = None
) -> grpc.ChannelCredentials:
    """Credentials of a client: the CA that signed the server (None: the system's), and this client's
    certificate and key for mutual TLS."""
    return grpc.ssl_channel_credentials(
        root_certificates=ca_file.read_bytes() if ca_file else None,
        private_key=key_file.read_bytes() if key_file else None,
        certificate_chain=cert_file.read_bytes() if cert_file else None,
    )


UNAUTHENTICATED_MESSAGE = "a client certificate is required: connect with mutual TLS"


def denied_message(identity: str, action: str) -> str:
    """What a caller whose identity is not allowed is told: who it came as, and the way forward."""
    return (
        f"the identity {identity} may not {action}: ask for it to be added to the service's allowed clients"
    )


class Admission:
    """Whether a caller, verified by the TLS handshake, may go on: its certificate identities against
    TLS_ALLOWED_CLIENTS. A refusal is counted (`refused`, by reason) and logged at most once per 10 s per
    kind; an admitted call leaves an aggregated audit line: the first of each identity and target, then
    one a minute carrying how many calls it covers, so the audit trail costs the hot path a dict lookup."""

    def __init__(
        self, allowed: tuple[str, ...], refused: Counter, logger: logging.Logger, audit: logging.Logger
    ):
        self._any = ANY_CLIENT in allowed
        self._allowed = frozenset(allowed)
        self._unauthenticated = refused.labels(reason="unauthenticated")
        self._denied = refused.labels(reason="permission_denied")
        self._refusals = ThrottledLog(logger, interval=10.0)
        self._audit = ThrottledLog(audit, interval=60.0)

    def admit(self, identities: tuple[str, ...], target: str, peer: Callable[[], object]) -> str | None:
        """The identity the caller is admitted as, or None once the refusal is counted and logged (no
        identities: unauthenticated; else: not allowed). `peer` is asked only for a refusal's log line,
        so an admitted call does not pay for it."""
        if not identities:
            self._unauthenticated.inc()
            self._refusals.log(
                logging.WARNING,
                "unauthenticated",
                "refused: no client certificate",
                {"target": target, "peer": peer()},
            )
            return None
        identity = identities[0]
        if not (self._any or not self._allowed.isdisjoint(identities)):
            self._denied.inc()
            self._refusals.log(
                logging.WARNING,
                f"denied {identity} {target}",
                "refused: identity not allowed",
                {"identity": identity, "target": target, "peer": peer()},
            )
            return None
        self._audit.log(
            logging.INFO, f"{identity} {target}", "audit", {"identity": identity, "target": target}
        )
        return identity
