"""Typed configuration from environment variables, validated once at start.

pydantic-settings gives us types, bounds and env-name mapping; this module turns
its errors into one message that names each bad variable, because a service that
starts with half a configuration is worse than one that refuses to start.
"""

from __future__ import annotations

from typing import Annotated, TypeVar

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

T = TypeVar("T", bound=BaseSettings)

Port = Annotated[int, Field(ge=1, le=65535)]
PositiveSeconds = Annotated[float, Field(gt=0, le=86400)]


class KafkaSettings(BaseSettings):
    """Shared by both services: where the broker is and which topic carries SumComputed."""

    model_config = SettingsConfigDict(env_prefix="KAFKA_", extra="ignore", frozen=True)

    bootstrap_servers: str = Field(default="127.0.0.1:9092", min_length=1)
    topic: str = Field(default="sums", pattern=r"^[A-Za-z0-9._-]{1,249}$")


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
