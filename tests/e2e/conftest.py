"""The chart installed on a real cluster: a fresh namespace enforcing the restricted Pod Security
Standard, a one-node Kafka locked down with TLS, client certificates and ACLs (the chart's external-Kafka
values, tests/e2e/secured_kafka.py), and `helm upgrade --install --wait`.

Run through `make e2e` (scripts/e2e/run.sh), which creates the kind cluster, loads the images and
exports DISTSUM_E2E_*. Under it, a missing part or a cluster that does not answer fails the run; run by
hand without a cluster, every test here is skipped with the reason."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, NoReturn

import pytest

from tests.deploy.layout import pinned
from tests.e2e import secured_kafka
from tests.e2e.kube import CHART, Settings, run
from tests.e2e.tls_clients import ClientCertificate

# The client's generated models are typed loosely (every field optional, dicts accepted where a model is
# declared): the tests use the client untyped, as Kubernetes objects are dynamic anyway.
kubernetes: Any = importlib.import_module("kubernetes")

RELEASE = "distsum"
# kube-prometheus-stack as scripts/e2e/run.sh installs it (pins.env).
PROMETHEUS_NAMESPACE = pinned()["KPS_NAMESPACE"]
PROMETHEUS_SERVICE = f"{pinned()['KPS_RELEASE']}-prometheus"
CLIENTS = [
    {"name": "operator", "add": True, "read": True},
    {"name": "auditor", "add": False, "read": True},
]
HELM_TIMEOUT = "5m"
# Short, so that a channel's connections move to sum pods added while it runs within the scale-out test.
MAX_CONNECTION_AGE_SECONDS = 30


def under_make_e2e() -> bool:
    """scripts/e2e/run.sh names the cluster's context: then there must be a cluster to test."""
    return bool(os.environ.get("DISTSUM_E2E_CONTEXT"))


def cannot_test(reason: str) -> NoReturn:
    """Under `make e2e`, a missing part is a failure; run by hand without one, the tests skip."""
    if under_make_e2e():
        pytest.fail(reason)
    pytest.skip(f"{reason}: run `make e2e`")


@pytest.fixture(scope="session")
def settings() -> Settings:
    found = Settings.from_env()
    if not (found.kubectl and found.helm and found.kafka_image):
        cannot_test("needs kubectl, helm and the local Kafka image")
    return found


@pytest.fixture(scope="session")
def api(settings: Settings) -> Any:
    # The cluster was just made ready by scripts/cluster/kind.sh; an API server slow to answer /version
    # gets a minute before the run fails.
    deadline = time.monotonic() + 60
    while True:
        try:
            client = kubernetes.config.new_client_from_config(context=settings.context)
            kubernetes.client.VersionApi(client).get_code(_request_timeout=10)
            return client
        except Exception as error:  # any failure means: no cluster to test against (yet)
            if time.monotonic() > deadline:
                cannot_test(f"no cluster answers for context {settings.context}: {error}")
            time.sleep(2)


@pytest.fixture(scope="session")
def core(api: Any) -> Any:
    return kubernetes.client.CoreV1Api(api)


@pytest.fixture(scope="session")
def batch(api: Any) -> Any:
    return kubernetes.client.BatchV1Api(api)


@pytest.fixture(scope="session")
def apps(api: Any) -> Any:
    return kubernetes.client.AppsV1Api(api)


def restricted_namespace(core: Any, name: str) -> Iterator[str]:
    """A fresh namespace whose pods the API server admits only under the restricted standard."""
    labels = {f"pod-security.kubernetes.io/{mode}": "restricted" for mode in ("enforce", "audit", "warn")}
    core.create_namespace({"metadata": {"name": name, "labels": labels}})
    yield name
    core.delete_namespace(name)


@pytest.fixture(scope="session")
def namespace(core: Any) -> Iterator[str]:
    """The release's namespace."""
    yield from restricted_namespace(core, f"distsum-e2e-{uuid.uuid4().hex[:6]}")


@pytest.fixture(scope="session")
def monitoring_namespace(core: Any) -> str:
    """Where kube-prometheus-stack's Prometheus runs (scripts/e2e/run.sh installs it): the chart's
    NetworkPolicies let its Prometheus pods reach the metrics ports."""
    if not core.list_namespaced_service(
        PROMETHEUS_NAMESPACE, field_selector=f"metadata.name={PROMETHEUS_SERVICE}"
    ).items:
        cannot_test(f"no Service {PROMETHEUS_SERVICE} in {PROMETHEUS_NAMESPACE}: Prometheus is not installed")
    return PROMETHEUS_NAMESPACE


@pytest.fixture(scope="session")
def kafka_bootstrap(apps: Any, batch: Any, core: Any, namespace: str, settings: Settings) -> str:
    """One locked-down KRaft node in the namespace, the chart's two topics and the services' ACLs on it."""
    return secured_kafka.start_kafka(apps, batch, core, namespace, settings)


@dataclass(frozen=True)
class Release:
    name: str
    namespace: str

    def selector(self, component: str) -> str:
        return f"app.kubernetes.io/instance={self.name},app.kubernetes.io/component={component}"

    def scale_sum(self, apps: Any, replicas: int) -> str:
        """Scale the sum Deployment; its name."""
        (deployment,) = apps.list_namespaced_deployment(
            self.namespace, label_selector=self.selector("sum")
        ).items
        name: str = deployment.metadata.name
        apps.patch_namespaced_deployment_scale(name, self.namespace, {"spec": {"replicas": replicas}})
        return name

    @property
    def sum_image(self) -> str:
        return f"distributed-sum/sum-svc:{Settings.from_env().image_tag}"

    def upgrade(self, settings: Settings, *sets: str, wait: bool = False) -> subprocess.CompletedProcess[str]:
        """`helm upgrade` of the live release with its values and these --set assignments."""
        argv = [settings.helm, "upgrade", self.name, str(CHART), "--kube-context", settings.context,
                "--namespace", self.namespace, "--reuse-values", "--timeout", HELM_TIMEOUT]  # fmt: skip
        for assignment in sets:
            argv += ["--set", assignment]
        return subprocess.run(
            [*argv, *(["--wait"] if wait else [])], capture_output=True, text=True, timeout=400, check=False
        )


@pytest.fixture(scope="session")
def release(settings: Settings, namespace: str, monitoring_namespace: str, kafka_bootstrap: str) -> Release:
    """The chart with the external-Kafka and minimal values, our images, `helm upgrade --install --wait`."""
    run(
        settings.helm, "upgrade", "--install", RELEASE, str(CHART),
        "--kube-context", settings.context, "--namespace", namespace,
        "--values", str(CHART / "values-external-kafka.yaml"),
        "--values", str(CHART / "values-minimal.yaml"),
        "--set", f"kafka.externalBootstrapServers={kafka_bootstrap}",
        *secured_kafka.release_values(),
        # The in-cluster broker has no fixed address: allow egress to any destination on its port.
        "--set-json", "networkPolicy.externalKafka.to=[]",
        "--set", f"networkPolicy.monitoringNamespace={monitoring_namespace}",
        # Prometheus is there: the ServiceMonitors and rules it is to select.
        "--set", "monitoring.serviceMonitor.enabled=true", "--set", "monitoring.prometheusRule.enabled=true",
        "--set", f"image.tag={settings.image_tag}",
        # Backups on, never on their schedule during the run: tests take them when they mean to.
        "--set", "ledger.backup.enabled=true", "--set", "ledger.backup.schedule=0 0 1 1 *",
        # A headless Service for clients that balance over the sum pods themselves (test_scale_out.py).
        "--set", "sum.service.headless=true",
        "--set", f"sum.limits.maxConnectionAgeSeconds={MAX_CONNECTION_AGE_SECONDS}",
        # Besides the default operator, an identity that may read the ledger but not add.
        "--set-json", f"tls.clients={json.dumps(CLIENTS)}",
        "--wait", "--timeout", HELM_TIMEOUT,
        timeout=600,
    )  # fmt: skip
    return Release(RELEASE, namespace)


@pytest.fixture(scope="session")
def operator(core: Any, release: Release, tmp_path_factory: pytest.TempPathFactory) -> ClientCertificate:
    """The certificate of the chart's default identity, which may add and read (NOTES.txt saves it so)."""
    return ClientCertificate.fetch(
        core, release.namespace, release.name, "operator", tmp_path_factory.mktemp("operator")
    )


@pytest.fixture(scope="session")
def auditor(core: Any, release: Release, tmp_path_factory: pytest.TempPathFactory) -> ClientCertificate:
    """An identity allowed to read the ledger only."""
    return ClientCertificate.fetch(
        core, release.namespace, release.name, "auditor", tmp_path_factory.mktemp("auditor")
    )
