"""TLS settings are checked at start, and rotated files are taken only when they make a usable pair."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from prometheus_client import REGISTRY, CollectorRegistry

from distsum import settings, tls
from localstack.certificates import LocalTls


@pytest.fixture
def local(tmp_path: Path) -> LocalTls:
    return LocalTls(tmp_path / "tls")


def test_enabled_tls_needs_readable_files_and_someone_allowed(
    local: LocalTls, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name, value in local.server_env().items():
        monkeypatch.setenv(name, value)
    loaded = settings.load(tls.TlsSettings)
    assert loaded.allowed_clients == ("spiffe://distsum.local/harness",)

    monkeypatch.setenv("TLS_ALLOWED_CLIENTS", " , ")
    with pytest.raises(settings.ConfigurationError, match="TLS_ALLOWED_CLIENTS names nobody"):
        settings.load(tls.TlsSettings)
    monkeypatch.setenv("TLS_ALLOWED_CLIENTS", "a, b ,*")
    assert settings.load(tls.TlsSettings).allowed_clients == ("a", "b", "*")

    monkeypatch.setenv("TLS_KEY_FILE", str(tmp_path / "missing.key"))
    with pytest.raises(settings.ConfigurationError, match=r"missing\.key"):
        settings.load(tls.TlsSettings)


def test_off_by_default() -> None:
    assert not tls.TlsSettings().enabled


def refusals() -> float:
    value = REGISTRY.get_sample_value("distsum_tls_certificate_reloads_total", {"result": "refused"})
    return value or 0.0


def test_the_expiry_gauge_reads_the_served_certificate_at_each_scrape(local: LocalTls) -> None:
    registry = CollectorRegistry()
    registry.register(tls.CertificateExpiry(local.server_cert_file))
    first = x509.load_pem_x509_certificate(local.server_cert_file.read_bytes())
    assert expiry(registry) == first.not_valid_after_utc.timestamp()

    renewed = local.ca.issue("renewed", dns=["localhost"], server=True, validity=dt.timedelta(days=90))
    renewed.write(local.server_cert_file.parent, "server")
    after = x509.load_pem_x509_certificate(renewed.cert_pem).not_valid_after_utc.timestamp()
    assert expiry(registry) == after > first.not_valid_after_utc.timestamp() + 80 * 86400

    # Caught mid-rotation: no sample (never a 0 that would read as expired), then the next file's.
    local.server_cert_file.write_bytes(b"-----BEGIN CERTIFICATE-----\ntruncated")
    assert expiry(registry) is None


def expiry(registry: CollectorRegistry) -> float | None:
    return registry.get_sample_value(tls.CertificateExpiry.NAME, {"role": "server"})


def test_changed_files_are_loaded_once_and_a_mismatched_pair_is_refused(local: LocalTls) -> None:
    files = tls.CertificateFiles(
        tls.TlsSettings(
            enabled=True,
            cert_file=local.server_cert_file,
            key_file=local.server_key_file,
            client_ca_file=local.ca_file,
            allowed_clients=("*",),
        )
    )
    first = files.load()
    assert files.load_if_changed() is None

    # A certificate without its key (a rotation caught half-way): refused once, the current pair stays.
    other = local.issue_server()
    local.server_cert_file.write_bytes(other.cert_pem)
    before = refusals()
    assert files.load_if_changed() is None
    assert files.load_if_changed() is None, "the same broken files are not read again at every handshake"
    assert refusals() == before + 1
    local.server_key_file.write_bytes(other.key_pem)
    reloaded = files.load_if_changed()
    assert reloaded is not None and reloaded.cert_chain == other.cert_pem != first.cert_chain
    assert files.load_if_changed() is None
