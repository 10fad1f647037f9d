"""An upgrade that changes the Kafka storage type of a running KafkaNodePool is refused with the way
forward (Strimzi would keep the old storage and only log a warning).

No Strimzi operator can run offline, so the test serves Strimzi's four kinds through stand-in CRDs that
accept any spec: enough for the chart to install its Strimzi objects and to read the live pool back."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from distsum.clients.waiting import wait_until
from tests.e2e.conftest import kubernetes, restricted_namespace
from tests.e2e.kube import CHART, Settings

KINDS = {
    "Kafka": "kafkas",
    "KafkaNodePool": "kafkanodepools",
    "KafkaTopic": "kafkatopics",
    "KafkaUser": "kafkausers",
}


def stand_in_crd(kind: str, plural: str) -> dict[str, Any]:
    return {
        "metadata": {"name": f"{plural}.kafka.strimzi.io"},
        "spec": {
            "group": "kafka.strimzi.io",
            "scope": "Namespaced",
            "names": {"kind": kind, "plural": plural, "singular": kind.lower(), "listKind": f"{kind}List"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                    },
                }
            ],
        },
    }


@pytest.fixture
def strimzi_kinds(api: Any) -> Iterator[None]:
    extensions = kubernetes.client.ApiextensionsV1Api(api)
    for kind, plural in KINDS.items():
        extensions.create_custom_resource_definition(stand_in_crd(kind, plural))

    def established() -> bool:
        crds = [extensions.read_custom_resource_definition(f"{p}.kafka.strimzi.io") for p in KINDS.values()]
        return all(
            any(c.type == "Established" and c.status == "True" for c in crd.status.conditions or [])
            for crd in crds
        )

    wait_until(established, 60, "the stand-in Strimzi CRDs to be established", 0.5)
    yield
    for plural in KINDS.values():
        extensions.delete_custom_resource_definition(f"{plural}.kafka.strimzi.io")


@pytest.fixture
def strimzi_namespace(core: Any) -> Iterator[str]:
    yield from restricted_namespace(core, f"distsum-strimzi-{uuid.uuid4().hex[:6]}")


def helm(settings: Settings, verb: str, namespace: str, *sets: str) -> subprocess.CompletedProcess[str]:
    """The chart with Strimzi on and monitoring off (no Prometheus Operator here), no wait: the pods have
    no Kafka to talk to."""
    argv = [settings.helm, verb, "kafka-shape", str(CHART), "--kube-context", settings.context,
            "--namespace", namespace]  # fmt: skip
    assignments = (
        f"image.tag={settings.image_tag}",
        "monitoring.serviceMonitor.enabled=false",
        "monitoring.prometheusRule.enabled=false",
        *sets,
    )
    for assignment in assignments:
        argv += ["--set", assignment]
    return subprocess.run(argv, capture_output=True, text=True, timeout=240, check=False)


def test_changing_the_storage_type_of_a_running_pool_is_refused(
    settings: Settings, strimzi_kinds: None, strimzi_namespace: str
) -> None:
    installed = helm(settings, "install", strimzi_namespace)  # persistent-claim, the default
    assert installed.returncode == 0, installed.stderr
    try:
        refused = helm(settings, "upgrade", strimzi_namespace, "kafka.strimzi.storage.type=ephemeral")
        assert refused.returncode != 0, refused.stdout[:2000]
        assert "Strimzi cannot change a node pool's storage type" in refused.stderr, refused.stderr
        assert "persistent-claim" in refused.stderr
    finally:
        subprocess.run(
            [settings.helm, "uninstall", "kafka-shape", "--kube-context", settings.context,
             "--namespace", strimzi_namespace, "--wait", "--timeout", "2m"],
            capture_output=True, text=True, timeout=180, check=False,
        )  # fmt: skip
