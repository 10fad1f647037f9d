"""How every Kafka client proves who it is: KafkaSettings' security turned into librdkafka settings."""

from __future__ import annotations

from typing import Any

from distsum.settings import KafkaSettings


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
