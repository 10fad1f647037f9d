"""A throwaway certificate authority and the certificates the local stack and the TLS tests need.

Certificates are short-lived and made on the fly (ECDSA P-256, SHA-256): nothing here is a secret worth
keeping, and nothing is committed. Identities are what the services authorise by: a certificate's
subject alternative names (DNS or URI, e.g. a SPIFFE id) and its common name.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from distsum.kafka.security import client_security
from distsum.settings import KafkaSettings

_VALIDITY = dt.timedelta(days=1)
_CLOCK_SKEW = dt.timedelta(minutes=5)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


@dataclass(frozen=True)
class KeyPair:
    cert_pem: bytes
    key_pem: bytes

    def write(self, directory: Path, stem: str) -> tuple[Path, Path]:
        """<stem>.crt and <stem>.key (0600) in directory; returns their paths."""
        directory.mkdir(parents=True, exist_ok=True)
        cert, key = directory / f"{stem}.crt", directory / f"{stem}.key"
        cert.write_bytes(self.cert_pem)
        key.touch(mode=0o600)
        key.write_bytes(self.key_pem)
        return cert, key


class CertificateAuthority:
    def __init__(self, name: str = "distsum local CA") -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(_name(name))
            .issuer_name(_name(name))
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _CLOCK_SKEW)
            .not_valid_after(now + _VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(self._key, hashes.SHA256())
        )
        self.cert_pem = self.certificate.public_bytes(serialization.Encoding.PEM)

    @classmethod
    def from_pem(cls, cert_pem: bytes, key_pem: bytes) -> CertificateAuthority:
        """A CA made elsewhere (e.g. the chart's, from its Secret), to issue more certificates with."""
        key = serialization.load_pem_private_key(key_pem, password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey), "only ECDSA CAs are supported"
        ca = cls.__new__(cls)
        ca._key, ca.cert_pem = key, cert_pem
        ca.certificate = x509.load_pem_x509_certificate(cert_pem)
        return ca

    def issue(
        self,
        common_name: str,
        *,
        dns: Sequence[str] = (),
        ips: Sequence[str] = (),
        uris: Sequence[str] = (),
        server: bool = False,
        client: bool = False,
        validity: dt.timedelta = _VALIDITY,
    ) -> KeyPair:
        """A leaf certificate for server and/or client authentication, valid for `validity` from now."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        usages = [ExtendedKeyUsageOID.SERVER_AUTH] * server + [ExtendedKeyUsageOID.CLIENT_AUTH] * client
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _CLOCK_SKEW)
            .not_valid_after(now + validity)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        )
        names: list[x509.GeneralName] = [x509.DNSName(name) for name in dns]
        names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
        names += [x509.UniformResourceIdentifier(uri) for uri in uris]
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        certificate = builder.sign(self._key, hashes.SHA256())
        return KeyPair(
            certificate.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ),
        )


HARNESS_IDENTITY = "spiffe://distsum.local/harness"


class LocalTls:
    """Mutual TLS for a local stack: a CA, a server key pair for 127.0.0.1 and localhost, and a client key
    pair for the harness's own calls, as files under `directory`."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.ca = CertificateAuthority()
        self.ca_file = directory / "ca.crt"
        directory.mkdir(parents=True, exist_ok=True)
        self.ca_file.write_bytes(self.ca.cert_pem)
        self.server_cert_file, self.server_key_file = self.issue_server().write(directory, "server")
        self.client = self.issue_client(HARNESS_IDENTITY)
        self.client_cert_file, self.client_key_file = self.client.write(directory, "client")

    def issue_server(self) -> KeyPair:
        return self.ca.issue("distsum local server", dns=["localhost"], ips=["127.0.0.1"], server=True)

    def issue_client(self, identity: str) -> KeyPair:
        """A client certificate whose identity is `identity` (a URI SAN, e.g. a SPIFFE id)."""
        return self.ca.issue(identity.rsplit("/", 1)[-1], uris=[identity], client=True)

    def server_env(self, allowed_clients: Sequence[str] = (HARNESS_IDENTITY,)) -> dict[str, str]:
        """The TLS_* settings of a service serving with mutual TLS to `allowed_clients`."""
        return {
            "TLS_ENABLED": "true",
            "TLS_CERT_FILE": str(self.server_cert_file),
            "TLS_KEY_FILE": str(self.server_key_file),
            "TLS_CLIENT_CA_FILE": str(self.ca_file),
            "TLS_ALLOWED_CLIENTS": ",".join(allowed_clients),
        }

    def ssl_context(self, pair: KeyPair | None = None) -> ssl.SSLContext:
        """An https client context trusting this stack's CA and presenting `pair` (default: the
        harness's client certificate)."""
        pair = self.client if pair is None else pair
        context = ssl.create_default_context(cadata=self.ca.cert_pem.decode())
        with tempfile.TemporaryDirectory() as scratch:  # load_cert_chain reads files only
            cert, key = pair.write(Path(scratch), "client")
            context.load_cert_chain(cert, key)
        return context

    def channel_credentials(self, pair: KeyPair | None = None) -> grpc.ChannelCredentials:
        """gRPC channel credentials trusting this stack's CA and presenting `pair` (default: the
        harness's client certificate)."""
        pair = self.client if pair is None else pair
        return grpc.ssl_channel_credentials(self.ca.cert_pem, pair.key_pem, pair.cert_pem)


KAFKA_BROKER = "kafka-broker"
KAFKA_TOOLING = "distsum-tooling"


class KafkaTls:
    """Mutual TLS for a local Kafka broker, as files under `directory`: a CA, the broker's key pair, and
    client key pairs whose common name is the Kafka principal (User:<name>). The broker and the tooling
    (topic creation, ACLs, readiness checks) are super users; everyone else gets only the ACLs granted."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.ca = CertificateAuthority("distsum local Kafka CA")
        directory.mkdir(parents=True, exist_ok=True)
        self.ca_file = directory / "ca.crt"
        self.ca_file.write_bytes(self.ca.cert_pem)
        broker = self.ca.issue(KAFKA_BROKER, dns=["localhost"], ips=["127.0.0.1"], server=True, client=True)
        # Kafka's PEM key store (tools/kafka/kraft-tls.properties): the key and its certificate in one file.
        self.broker_keystore = directory / "broker.pem"
        self.broker_keystore.touch(mode=0o600)
        self.broker_keystore.write_bytes(broker.key_pem + broker.cert_pem)
        self._clients: dict[str, tuple[Path, Path]] = {}

    def client_files(self, principal: str) -> tuple[Path, Path]:
        """The certificate and key of the client whose principal is `principal` (issued once)."""
        if principal not in self._clients:
            pair = self.ca.issue(principal, client=True)
            self._clients[principal] = pair.write(self.directory, f"client-{principal}")
        return self._clients[principal]

    def client_env(self, principal: str) -> dict[str, str]:
        """The KAFKA_* settings of a service connecting as `principal`."""
        cert, key = self.client_files(principal)
        return {
            "KAFKA_SECURITY_PROTOCOL": "SSL",
            "KAFKA_CA_FILE": str(self.ca_file),
            "KAFKA_CERT_FILE": str(cert),
            "KAFKA_KEY_FILE": str(key),
        }

    def scram_env(self, username: str, password_file: Path) -> dict[str, str]:
        """The KAFKA_* settings of a service connecting as SCRAM user `username` (no certificate)."""
        return {
            "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "KAFKA_CA_FILE": str(self.ca_file),
            "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "KAFKA_SASL_USERNAME": username,
            "KAFKA_SASL_PASSWORD_FILE": str(password_file),
        }

    def client_security(self, principal: str) -> dict[str, Any]:
        """librdkafka's security settings of a client connecting as `principal`, made as the services
        make theirs."""
        cert, key = self.client_files(principal)
        kafka = KafkaSettings.model_construct(
            security_protocol="SSL", ca_file=self.ca_file, cert_file=cert, key_file=key
        )
        return client_security(kafka)
