"""`helm upgrade` traps the chart closes, on the live release: a ledger volume size a StatefulSet cannot
take is refused with the way forward, and turning the HPA on keeps the running replica count.

The module's name sorts last: it changes the shared release (and puts it back where it can)."""

from __future__ import annotations

from typing import Any

from distsum.clients.waiting import wait_until
from tests.e2e.conftest import Release
from tests.e2e.kube import Settings

REPLICAS = 3


def test_a_new_ledger_volume_size_is_refused_with_the_way_forward(
    settings: Settings, release: Release
) -> None:
    refused = release.upgrade(settings, "ledger.persistence.size=3Gi")
    assert refused.returncode != 0, refused.stdout
    assert "differs from the running StatefulSet" in refused.stderr, refused.stderr
    assert "--cascade=orphan" in refused.stderr


def test_an_upgrade_keeps_the_certificates_the_chart_made(
    core: Any, settings: Settings, release: Release
) -> None:
    """A new CA at each upgrade would lock out every client holding a certificate of the old one."""

    def certificates() -> dict[str, dict[str, str]]:
        secrets = core.list_namespaced_secret(
            release.namespace, label_selector=f"{release.selector('tls')}"
        ).items
        return {s.metadata.name: s.data for s in secrets}

    before = certificates()
    assert {name.rsplit("-", 1)[-1] for name in before} >= {"ca", "tls", "operator", "auditor"}, before.keys()
    done = release.upgrade(settings)
    assert done.returncode == 0, done.stderr
    assert certificates() == before


def test_turning_the_hpa_on_keeps_the_running_replicas(
    apps: Any, settings: Settings, release: Release
) -> None:
    name = release.scale_sum(apps, REPLICAS)
    try:
        done = release.upgrade(
            settings,
            "sum.autoscaling.enabled=true", "sum.autoscaling.minReplicas=1", "sum.autoscaling.maxReplicas=5",
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        # Helm would otherwise drop the field, which the API server reads as one replica at once.
        spec = apps.read_namespaced_deployment(name, release.namespace).spec
        assert spec.replicas == REPLICAS
    finally:
        release.upgrade(settings, "sum.autoscaling.enabled=false")
        release.scale_sum(apps, 1)
        wait_until(
            lambda: apps.read_namespaced_deployment(name, release.namespace).status.ready_replicas == 1,
            120,
            "the sum Deployment back at one ready replica",
            1.0,
        )
