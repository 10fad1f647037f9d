"""Typed configuration from environment variables, validated once at start.

pydantic-settings gives us types, bounds and env-name mapping; this module turns
its errors into one message that names each bad variable, because a service that
starts with half a configuration is worse than one that refuses to start.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal, TypeVar

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

T = TypeVar("T", bound=BaseSettings)

Port = Annotated[int, Field(ge=1, le=65535)]
PositiveSeconds = Annotated[float, Field(gt=0, le=86400)]


class KafkaSettings(BaseSettings):
    """Shared by both services: where the broker is, which topic carries SumComputed, and how to prove
    who is connecting (distsum.kafka.security turns it into the clients' settings).

    Credentials are files (a mounted Secret), never variables: a password in the environment shows in
    `ps e`, crash dumps and the pod spec. Only their paths are held here, so nothing secret is logged."""

    model_config = SettingsConfigDict(env_prefix="KAFKA_", extra="ignore", frozen=True)

    bootstrap_servers: str = Field(default="127.0.0.1:9092", min_length=1)
    topic: str = Field(default="sums", pattern=r"^[A-Za-z0-9._-]{1,249}$")
    # PLAINTEXT, SSL (TLS; with cert_file, mutual TLS) or SASL_SSL (SCRAM over TLS). SASL over plaintext
    # would send the password in the clear, so it is not offered.
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_SSL"] = "PLAINTEXT"
    # The CA the brokers' certificates are checked against; None: the system's CAs.
    ca_file: Path | None = None
    # This client's certificate and key, for brokers that authenticate clients by TLS.
    cert_file: Path | None = None
    key_file: Path | None = None
    sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256"] = "SCRAM-SHA-512"
    sasl_username: str | None = None
    sasl_password_file: Path | None = None
    # How often the credential files are compared with what the clients were made with, and the longest
    # a replica waits at random before restarting for new ones (so replicas do not all go at once).
    credentials_check_seconds: PositiveSeconds = 30
    credentials_restart_spread_seconds: float = Field(default=120, ge=0, le=86400)

    def credential_files(self) -> list[Path]:
        """The files the clients read their credentials from when they are made."""
        files = (self.ca_file, self.cert_file, self.key_file, self.sasl_password_file)
        return [path for path in files if path is not None]

    @model_validator(mode="after")
    def _complete(self) -> KafkaSettings:
        tls_files = {"ca_file": self.ca_file, "cert_file": self.cert_file, "key_file": self.key_file}
        sasl = {"sasl_username": self.sasl_username, "sasl_password_file": self.sasl_password_file}
        if self.security_protocol == "PLAINTEXT":
            given = [f"KAFKA_{name.upper()}" for name, value in {**tls_files, **sasl}.items() if value]
            if given:
                raise ValueError(
                    f"{', '.join(given)} set but KAFKA_SECURITY_PROTOCOL is PLAINTEXT: set it to SSL "
                    "(or SASL_SSL for SCRAM) to use them"
                )
            return self
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError(
                "KAFKA_CERT_FILE and KAFKA_KEY_FILE go together (a client certificate and its key)"
            )
        if self.security_protocol == "SSL" and any(sasl.values()):
            raise ValueError(
                "KAFKA_SASL_* set but KAFKA_SECURITY_PROTOCOL is SSL: set it to SASL_SSL to use them"
            )
        if self.security_protocol == "SASL_SSL" and not all(sasl.values()):
            raise ValueError(
                "KAFKA_SECURITY_PROTOCOL=SASL_SSL needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD_FILE"
            )
        unreadable = [str(path) for path in self.credential_files() if not os.access(path, os.R_OK)]
        if unreadable:
            raise ValueError(f"Kafka credential files cannot be read: {', '.join(unreadable)}")
        return self


class ConfigurationError(SystemExit):
    """Raised (and printed by the interpreter) when the environment does not describe a valid service."""


def load(settings_type: type[T]) -> T:
    try:
        return settings_type()
    except ValidationError as exc:
        prefix = str(settings_type.model_config.get("env_prefix", ""))
        # A field read from a variable of another name (validation_alias) is named by that variable.
        aliases = {f.validation_alias for f in settings_type.model_fields.values()}
        problems = []
        for error in exc.errors():
            loc = error["loc"]
            name = ("" if loc and loc[0] in aliases else prefix) + "_".join(str(part) for part in loc).upper()
            problems.append(f"  {name}: {error['msg']}")
        raise ConfigurationError(
            f"invalid configuration for {settings_type.__name__}:\n" + "\n".join(problems)
        ) from None
