"""How the services prove who they are to Kafka: KAFKA_* security settings, checked at start, and the
librdkafka settings every client is made with."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from distsum import settings
from distsum.kafka import clients as kafka_clients
from distsum.kafka.security import CredentialRotation, client_security
from distsum.settings import ConfigurationError, KafkaSettings


def kafka_from(monkeypatch: pytest.MonkeyPatch, **env: str) -> KafkaSettings:
    for name in os.environ:
        if name.startswith("KAFKA_"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return settings.load(KafkaSettings)


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    paths = {name: tmp_path / name for name in ("ca.crt", "tls.crt", "tls.key", "password")}
    for path in paths.values():
        path.write_text("secret-ish\n")
    return {name: str(path) for name, path in paths.items()}


def test_plaintext_by_default_adds_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    kafka = kafka_from(monkeypatch)
    assert client_security(kafka) == {}


def test_mutual_tls_names_the_ca_and_the_client_certificate(
    monkeypatch: pytest.MonkeyPatch, files: dict[str, str]
) -> None:
    kafka = kafka_from(
        monkeypatch,
        KAFKA_SECURITY_PROTOCOL="SSL",
        KAFKA_CA_FILE=files["ca.crt"],
        KAFKA_CERT_FILE=files["tls.crt"],
        KAFKA_KEY_FILE=files["tls.key"],
    )
    assert client_security(kafka) == {
        "security.protocol": "SSL",
        "ssl.endpoint.identification.algorithm": "https",
        "ssl.ca.location": files["ca.crt"],
        "ssl.certificate.location": files["tls.crt"],
        "ssl.key.location": files["tls.key"],
    }


def test_scram_reads_the_password_from_its_file_each_time(
    monkeypatch: pytest.MonkeyPatch, files: dict[str, str]
) -> None:
    kafka = kafka_from(
        monkeypatch,
        KAFKA_SECURITY_PROTOCOL="SASL_SSL",
        KAFKA_SASL_USERNAME="sum-svc",
        KAFKA_SASL_PASSWORD_FILE=files["password"],
    )
    security = client_security(kafka)
    assert security["sasl.mechanism"] == "SCRAM-SHA-512"
    assert (security["sasl.username"], security["sasl.password"]) == ("sum-svc", "secret-ish")
    assert "ssl.ca.location" not in security, "no CA file: the system's CAs"
    # A rotated Secret reaches the next client made, without a restart.
    Path(files["password"]).write_text("rotated\n")
    assert client_security(kafka)["sasl.password"] == "rotated"
    # Only the file's path is held, so the settings never carry the password into a log line.
    assert "secret-ish" not in repr(kafka) and "rotated" not in repr(kafka)


def test_every_client_is_made_with_the_security_settings(
    monkeypatch: pytest.MonkeyPatch, files: dict[str, str]
) -> None:
    kafka = kafka_from(monkeypatch, KAFKA_SECURITY_PROTOCOL="SSL", KAFKA_CA_FILE=files["ca.crt"])
    config = kafka_clients.producer_config(
        "broker:9093", settings={"client.id": "x"}, security=client_security(kafka)
    )
    assert config["security.protocol"] == "SSL" and config["ssl.ca.location"] == files["ca.crt"]
    assert config["enable.idempotence"] is True and config["client.id"] == "x"


@pytest.mark.parametrize(
    ("env", "complaint"),
    [
        ({"KAFKA_CA_FILE": "ca.crt"}, "KAFKA_CA_FILE set but KAFKA_SECURITY_PROTOCOL is PLAINTEXT"),
        ({"KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT"}, "KAFKA_SECURITY_PROTOCOL"),
        ({"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_CERT_FILE": "tls.crt"}, "go together"),
        (
            {"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SASL_USERNAME": "sum-svc"},
            "KAFKA_SASL_* set but KAFKA_SECURITY_PROTOCOL is SSL",
        ),
        ({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}, "needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD_FILE"),
        (
            {"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_CA_FILE": "/nonexistent/ca.crt"},
            "cannot be read: /nonexistent/ca.crt",
        ),
        ({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_MECHANISM": "PLAIN"}, "KAFKA_SASL_MECHANISM"),
    ],
)
def test_an_incomplete_security_setting_stops_the_service_naming_it(
    monkeypatch: pytest.MonkeyPatch, files: dict[str, str], env: dict[str, str], complaint: str
) -> None:
    resolved = {name: files.get(value, value) for name, value in env.items()}
    with pytest.raises(ConfigurationError) as refused:
        kafka_from(monkeypatch, **resolved)
    assert complaint in str(refused.value)


def test_a_changed_credential_file_asks_for_a_restart_and_unchanged_ones_do_not(
    monkeypatch: pytest.MonkeyPatch, files: dict[str, str]
) -> None:
    kafka = kafka_from(
        monkeypatch,
        KAFKA_SECURITY_PROTOCOL="SASL_SSL",
        KAFKA_CA_FILE=files["ca.crt"],
        KAFKA_SASL_USERNAME="sum-svc",
        KAFKA_SASL_PASSWORD_FILE=files["password"],
        KAFKA_CREDENTIALS_CHECK_SECONDS="0.02",
        KAFKA_CREDENTIALS_RESTART_SPREAD_SECONDS="0",
    )
    restarted = threading.Event()
    rotation = CredentialRotation(kafka, restarted.set)
    rotation.start()
    try:
        # Twenty-five checks of the same files (touched, not changed) ask for nothing.
        os.utime(files["password"])
        assert not restarted.wait(0.5)
        Path(files["password"]).write_text("the new password\n")
        assert restarted.wait(10), "no restart after the password file changed"
    finally:
        rotation.stop()
