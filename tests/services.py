"""What the tests do with running services beyond the typed clients: request ids and metric samples."""

from __future__ import annotations

import urllib.request
import uuid

from prometheus_client.parser import text_string_to_metric_families


def new_id() -> str:
    return str(uuid.uuid4())


def samples(url: str, name: str) -> list[tuple[dict[str, str], float]]:
    """The samples of metric `name` that the Prometheus endpoint at url serves, with their labels."""
    text = urllib.request.urlopen(url, timeout=5).read().decode()
    return [
        (sample.labels, sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    ]


def sample(url: str, name: str, **labels: str) -> float | None:
    return next((value for found, value in samples(url, name) if labels.items() <= found.items()), None)
