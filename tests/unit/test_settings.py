"""Configuration from the environment: refuse to start and name each bad variable."""

from __future__ import annotations

import os

import pytest

from distsum import settings
from distsum.settings import ConfigurationError, KafkaSettings
from ledger_svc.config import LedgerSettings
from sum_svc.config import SumSettings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith(("SUM_", "LEDGER_", "KAFKA_")):
            monkeypatch.delenv(name)


def refusal(settings_type: type[SumSettings] | type[LedgerSettings] | type[KafkaSettings]) -> str:
    with pytest.raises(ConfigurationError) as raised:
        settings.load(settings_type)
    assert isinstance(raised.value, SystemExit)
    return str(raised.value)


def test_defaults_load_without_any_environment() -> None:
    assert settings.load(SumSettings).grpc_port == 50051
    assert settings.load(LedgerSettings).http_port == 8080
    assert settings.load(KafkaSettings).topic == "sums"


def test_environment_values_are_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUM_GRPC_PORT", "6000")
    monkeypatch.setenv("SUM_PUBLISH_TIMEOUT_SECONDS", "2.5")
    monkeypatch.setenv("KAFKA_TOPIC", "sums.v2")
    loaded = settings.load(SumSettings)
    assert (loaded.grpc_port, loaded.publish_timeout_seconds) == (6000, 2.5)
    assert settings.load(KafkaSettings).topic == "sums.v2"


@pytest.mark.parametrize("value", ["abc", "70000", "0", "-1", "1.5", ""])
def test_bad_port_names_the_variable(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("SUM_GRPC_PORT", value)
    message = refusal(SumSettings)
    assert message.startswith("invalid configuration for SumSettings:")
    assert "SUM_GRPC_PORT" in message


def test_every_bad_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUM_GRPC_PORT", "abc")
    monkeypatch.setenv("SUM_IDEMPOTENCY_MAX_ENTRIES", "0")
    message = refusal(SumSettings)
    assert "SUM_GRPC_PORT" in message
    assert "SUM_IDEMPOTENCY_MAX_ENTRIES" in message
    assert "SUM_METRICS_PORT" not in message


def test_delivery_timeout_shorter_than_publish_timeout_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUM_PUBLISH_TIMEOUT_SECONDS", "10")
    monkeypatch.setenv("SUM_DELIVERY_TIMEOUT_SECONDS", "5")
    message = refusal(SumSettings)
    assert "SUM_DELIVERY_TIMEOUT_SECONDS must be >= SUM_PUBLISH_TIMEOUT_SECONDS" in message


def test_idempotency_ttl_not_longer_than_delivery_timeout_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUM_DELIVERY_TIMEOUT_SECONDS", "30")
    monkeypatch.setenv("SUM_IDEMPOTENCY_TTL_SECONDS", "30")
    assert "SUM_IDEMPOTENCY_TTL_SECONDS must be > SUM_DELIVERY_TIMEOUT_SECONDS" in refusal(SumSettings)


@pytest.mark.parametrize(
    ("variable", "value"), [("SUM_PUBLISH_TIMEOUT_SECONDS", "0"), ("SUM_SHUTDOWN_GRACE_SECONDS", "nan")]
)
def test_non_positive_or_non_finite_seconds_are_refused(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    assert variable in refusal(SumSettings)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("LEDGER_HTTP_PORT", "99999"),
        ("LEDGER_WEB_WORKERS", "0"),
        ("LEDGER_DEAD_LETTER_TOPIC", "bad topic"),
        # Below the consumer's session timeout an empty assignment can be an ordinary rebalance.
        ("LEDGER_REJOIN_AFTER_SECONDS", "19.9"),
        ("LEDGER_REJOIN_AFTER_SECONDS", "3601"),
    ],
)
def test_bad_ledger_variables_are_named(monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> None:
    monkeypatch.setenv(variable, value)
    assert variable in refusal(LedgerSettings)


@pytest.mark.parametrize("value", ["20", "3600"])
def test_rejoin_after_accepts_its_bounds(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("LEDGER_REJOIN_AFTER_SECONDS", value)
    assert settings.load(LedgerSettings).rejoin_after_seconds == float(value)


def test_rejoin_after_refusal_names_the_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEDGER_REJOIN_AFTER_SECONDS", "5")
    message = refusal(LedgerSettings)
    assert "LEDGER_REJOIN_AFTER_SECONDS: Input should be greater than or equal to 20" in message


@pytest.mark.parametrize(
    ("variable", "value"), [("KAFKA_TOPIC", "no spaces"), ("KAFKA_BOOTSTRAP_SERVERS", "")]
)
def test_bad_kafka_variables_are_named(monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> None:
    monkeypatch.setenv(variable, value)
    assert variable in refusal(KafkaSettings)


def test_variables_of_other_services_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEDGER_HTTP_PORT", "abc")
    monkeypatch.setenv("SUM_UNKNOWN_KNOB", "1")
    assert settings.load(SumSettings).grpc_port == 50051
