"""Against a cluster without the Prometheus Operator or Strimzi (as the offline one is), the chart names
the missing API and the way forward at render time (`helm install --dry-run=server`)."""

from __future__ import annotations

import subprocess

import pytest

from tests.e2e.conftest import Release
from tests.e2e.kube import CHART, Settings


def dry_run(settings: Settings, release: Release, *sets: str) -> subprocess.CompletedProcess[str]:
    argv = [settings.helm, "install", "apis-check", str(CHART), "--dry-run=server",
            "--kube-context", settings.context, "--namespace", release.namespace,
            "--set", f"image.tag={settings.image_tag}"]  # fmt: skip
    for assignment in sets:
        argv += ["--set", assignment]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize(
    ("sets", "named"),
    [
        (
            ("kafka.strimzi.enabled=false", "kafka.externalBootstrapServers=kafka:9092"),
            "monitoring.coreos.com/v1",
        ),
        (
            ("monitoring.serviceMonitor.enabled=false", "monitoring.prometheusRule.enabled=false"),
            "kafka.strimzi.io/v1",
        ),
    ],
)
def test_a_missing_api_is_named_with_the_way_forward(
    settings: Settings, release: Release, sets: tuple[str, ...], named: str
) -> None:
    refused = dry_run(settings, release, *sets)
    assert refused.returncode != 0, refused.stdout[:2000]
    assert f"this cluster does not serve {named}" in refused.stderr, refused.stderr
