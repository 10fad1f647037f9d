"""Against a cluster without Strimzi (as the offline one is), the chart names the missing API and the way
forward at render time (`helm install --dry-run=server`). The Prometheus Operator's API is served here
(scripts/e2e/run.sh installs kube-prometheus-stack), and the release installs with its ServiceMonitors
and rules (tests/e2e/conftest.py): the same lookup finds it."""

from __future__ import annotations

import subprocess

from tests.e2e.conftest import Release
from tests.e2e.kube import CHART, Settings


def dry_run(settings: Settings, release: Release, *sets: str) -> subprocess.CompletedProcess[str]:
    argv = [settings.helm, "install", "apis-check", str(CHART), "--dry-run=server",
            "--kube-context", settings.context, "--namespace", release.namespace,
            "--set", f"image.tag={settings.image_tag}"]  # fmt: skip
    for assignment in sets:
        argv += ["--set", assignment]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)


def test_a_missing_api_is_named_with_the_way_forward(settings: Settings, release: Release) -> None:
    refused = dry_run(settings, release)
    assert refused.returncode != 0, refused.stdout[:2000]
    assert "this cluster does not serve kafka.strimzi.io/v1" in refused.stderr, refused.stderr
    assert "monitoring.coreos.com/v1" not in refused.stderr, "the served Prometheus Operator API was missed"
