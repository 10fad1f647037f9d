"""How every Kafka client proves who it is: KafkaSettings' security turned into librdkafka settings, and
what happens when the credentials rotate."""

from __future__ import annotations

import hashlib
import logging
import random
import threading
from collections.abc import Callable
from typing import Any

from distsum.settings import KafkaSettings

log = logging.getLogger(__name__)


def client_security(kafka: KafkaSettings) -> dict[str, Any]:
    """librdkafka's security settings for `kafka`. The SASL password is read from its file here, each
    time a client is made, so a rotated Secret reaches the next client without a restart."""
    if kafka.security_protocol == "PLAINTEXT":
        return {}
    config: dict[str, Any] = {
        "security.protocol": kafka.security_protocol,
        # The brokers' certificates must name the address dialled (librdkafka's default, stated).
        "ssl.endpoint.identification.algorithm": "https",
    }
    if kafka.ca_file is not None:
        config["ssl.ca.location"] = str(kafka.ca_file)
    if kafka.cert_file is not None and kafka.key_file is not None:
        config["ssl.certificate.location"] = str(kafka.cert_file)
        config["ssl.key.location"] = str(kafka.key_file)
    if kafka.security_protocol == "SASL_SSL":
        assert kafka.sasl_password_file is not None  # KafkaSettings refuses SASL_SSL without one
        config["sasl.mechanism"] = kafka.sasl_mechanism
        config["sasl.username"] = kafka.sasl_username
        config["sasl.password"] = kafka.sasl_password_file.read_text().rstrip("\n")
    return config


class CredentialRotation:
    """Notices rotated Kafka credentials and has the process restart to use them.

    librdkafka reads a certificate, key or password once, when a client is made, and keeps it. When the
    mounted Secret changes (a renewed KafkaUser certificate, a new password), this thread calls
    `restart` after a random delay of up to `credentials_restart_spread_seconds`, so the replicas of a
    Deployment do not all restart at once. The process then stops the way it does on SIGTERM (nothing
    in flight is lost) and Kubernetes starts it again with the new files. The old credentials stay
    valid meanwhile: Strimzi renews 30 days before expiry, and a SCRAM password change should keep the
    old one until every client has restarted."""

    def __init__(self, kafka: KafkaSettings, restart: Callable[[], None]) -> None:
        self._kafka = kafka
        self._restart = restart
        self._stop = threading.Event()
        self._seen = self._fingerprint()
        self._thread = threading.Thread(target=self._watch, name="kafka-credentials", daemon=True)

    def _fingerprint(self) -> bytes:
        digest = hashlib.sha256()
        for path in self._kafka.credential_files():
            try:
                digest.update(path.read_bytes())
            except OSError:  # between a Secret's old and new files; the next check sees them settled
                digest.update(b"unreadable")
        return digest.digest()

    def start(self) -> None:
        if self._kafka.credential_files():
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _watch(self) -> None:
        while not self._stop.wait(self._kafka.credentials_check_seconds):
            if self._fingerprint() != self._seen:
                delay = random.uniform(0, self._kafka.credentials_restart_spread_seconds)
                log.warning(
                    "Kafka credentials changed; restarting to use them",
                    extra={"after_seconds": round(delay, 1)},
                )
                if not self._stop.wait(delay):
                    self._restart()
                return
