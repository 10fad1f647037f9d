"""Shared code of distributed-sum: the API, event codec, config, logging, telemetry and the CLI."""
