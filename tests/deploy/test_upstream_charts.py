"""The upstream charts of the stack, at their pins, rendered with our values exactly as `make cluster-up`
installs them (tests/deploy/stack_render.py), then their wiring checked on what they render: the
Prometheus selects our monitors and rules, Grafana's sidecar our dashboards, Tempo receives OTLP where our
chart sends it, Alloy pushes to Loki, every pod passes its namespace's Pod Security level and every path
a read-only container writes is a mounted volume."""

from __future__ import annotations

import re
import shutil
import tarfile
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from scripts.k8s_schemas import CRD_DIR, KUBERNETES_DIR, write_crd_documents
from tests.chart.chart_tools import KubeconformTools, Manifest, env_of, kubeconform, kubeconform_tools
from tests.deploy import alloy_config
from tests.deploy.layout import REMOTE_RELEASES, pinned
from tests.deploy.pod_security import violations
from tests.deploy.stack_render import (
    Release,
    containers,
    mounted_config,
    namespace_labels,
    pod_spec,
    render_stack,
    selects,
    service_backend,
)

APP = pinned()["APP_RELEASE"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Release]:
    releases = render_stack(tmp_path_factory.mktemp("up"))
    return {release.name: release for release in releases}


@pytest.fixture(scope="module")
def rendered(stack: dict[str, Release]) -> dict[str, Release]:
    failed = {name: release.error for name, release in stack.items() if release.error and not release.objects}
    assert not failed, f"releases that do not render: {failed}"
    return stack


@pytest.mark.parametrize("prefix", REMOTE_RELEASES)
def test_each_pinned_chart_renders_with_our_values(stack: dict[str, Release], prefix: str) -> None:
    release = stack[pinned()[f"{prefix}_RELEASE"]]
    assert release.objects, f"helm template {release.name} failed:\n{release.error}"


@pytest.mark.parametrize("prefix", REMOTE_RELEASES)
def test_each_package_is_the_pinned_version(stack: dict[str, Release], prefix: str) -> None:
    pins = pinned()
    package = Path(stack[pins[f"{prefix}_RELEASE"]].argv[3])
    with tarfile.open(package) as archive:
        member = archive.extractfile(f"{pins[f'{prefix}_CHART']}/Chart.yaml")
        assert member is not None
        chart = yaml.safe_load(member.read())
    assert (chart["name"], str(chart["version"])) == (pins[f"{prefix}_CHART"], pins[f"{prefix}_VERSION"])
    if prefix == "KPS":
        # The monitoring.coreos.com CRDs our chart is validated against are those of this operator.
        assert chart["appVersion"] == pins["PROMETHEUS_OPERATOR_VERSION"]


@pytest.fixture(scope="module")
def stack_schemas(rendered: dict[str, Release], tmp_path_factory: pytest.TempPathFactory) -> KubeconformTools:
    """The pinned Kubernetes schemas, and schemas of the CRDs the stack itself renders (Prometheus,
    Alertmanager, Strimzi's kinds ...) in place of any cached ones."""
    pinned_tools = kubeconform_tools()
    out = tmp_path_factory.mktemp("schemas")
    (out / KUBERNETES_DIR).symlink_to(pinned_tools.schemas / KUBERNETES_DIR)
    shutil.copytree(pinned_tools.schemas / CRD_DIR, out / CRD_DIR)
    crds = [crd for release in rendered.values() for crd in release.of_kind("CustomResourceDefinition")]
    assert write_crd_documents(crds, out) > 0
    return KubeconformTools(pinned_tools.kubeconform, out)


def test_every_rendered_object_matches_its_schema(
    rendered: dict[str, Release], stack_schemas: KubeconformTools, tmp_path: Path
) -> None:
    files = []
    for name, release in rendered.items():
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.dump_all(release.objects, Dumper=yaml.CSafeDumper))
        files.append(path)
    invalid = {
        f"{Path(file).stem}: {verdict.kind}/{verdict.name}": verdict.message
        for file, verdicts in kubeconform(files, stack_schemas).items()
        for verdict in verdicts
        if verdict.status != "statusValid"
    }
    assert not invalid, invalid


def _prometheus(rendered: dict[str, Release]) -> Manifest:
    (prometheus,) = rendered[pinned()["KPS_RELEASE"]].of_kind("Prometheus")
    return prometheus


@pytest.mark.parametrize(
    ("kind", "selector"), [("ServiceMonitor", "serviceMonitor"), ("PrometheusRule", "rule")]
)
def test_the_prometheus_selects_our_monitors_and_rules(
    rendered: dict[str, Release], kind: str, selector: str
) -> None:
    spec = _prometheus(rendered)["spec"]
    ours = rendered[APP].of_kind(kind)
    assert ours, f"make cluster-up installs our chart without {kind}s"
    namespace = namespace_labels()[rendered[APP].namespace]
    # An absent namespace selector means the Prometheus's own namespace only.
    assert spec.get(f"{selector}NamespaceSelector") is not None, "our chart lives in another namespace"
    assert selects(spec[f"{selector}NamespaceSelector"], namespace)
    for obj in ours:
        assert selects(spec.get(f"{selector}Selector"), obj["metadata"].get("labels", {})), obj["metadata"]


def test_grafanas_sidecar_watches_our_dashboards(rendered: dict[str, Release]) -> None:
    grafana = rendered[pinned()["KPS_RELEASE"]].named("Deployment", f"{pinned()['KPS_RELEASE']}-grafana")
    (sidecar,) = [c for c in containers(pod_spec(grafana)) if c["name"] == "grafana-sc-dashboard"]
    env = env_of(sidecar)
    dashboards = [
        config
        for config in rendered[APP].of_kind("ConfigMap")
        if any(key.endswith(".json") for key in config.get("data", {}))
    ]
    assert dashboards, "make cluster-up installs our chart without dashboards"
    for config in dashboards:
        labels = config["metadata"].get("labels", {})
        assert labels.get(env["LABEL"]) == env.get("LABEL_VALUE", labels.get(env["LABEL"])), labels
    assert env["NAMESPACE"] == "ALL" or rendered[APP].namespace in env["NAMESPACE"].split(",")


def test_tempo_receives_otlp_where_our_services_send_it(rendered: dict[str, Release]) -> None:
    endpoints = {
        env_of(container)["OTEL_EXPORTER_OTLP_ENDPOINT"]
        for _, spec in rendered[APP].pod_specs()
        for container in spec["containers"]
        if "OTEL_EXPORTER_OTLP_ENDPOINT" in env_of(container)
    }
    assert len(endpoints) == 1, f"our services send traces to {endpoints}"
    backend = service_backend(list(rendered.values()), endpoints.pop())
    tempo = rendered[pinned()["TEMPO_RELEASE"]]
    configs = dict(mounted_config(tempo, pod_spec(backend.workload), backend.container))
    (config,) = [parsed for path, parsed in configs.items() if "distributor" in parsed]
    grpc = config["distributor"]["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"]
    assert int(grpc.rpartition(":")[2]) == backend.port, (
        "the Service leads to a port Tempo does not receive on"
    )


def test_alloy_pushes_logs_to_lokis_push_url(rendered: dict[str, Release]) -> None:
    alloy = rendered[pinned()["ALLOY_RELEASE"]]
    (content,) = [
        text
        for config in alloy.of_kind("ConfigMap")
        for key, text in config["data"].items()
        if key.endswith(".alloy")
    ]
    url = alloy_config.string_attribute(alloy_config.block(content, 'loki.write "loki"'), "url")
    assert url.endswith("/loki/api/v1/push"), url
    backend = service_backend(list(rendered.values()), url)
    loki = rendered[pinned()["LOKI_RELEASE"]]
    configs = dict(mounted_config(loki, pod_spec(backend.workload), backend.container))
    (config,) = [parsed for parsed in configs.values() if "server" in parsed]
    assert config["server"]["http_listen_port"] == backend.port


def _grafana_datasources(rendered: dict[str, Release]) -> list[dict[str, Any]]:
    release = rendered[pinned()["KPS_RELEASE"]]
    config = release.named("ConfigMap", f"{release.name}-grafana-datasource")
    sources: list[dict[str, Any]] = yaml.safe_load(config["data"]["datasource.yaml"])["datasources"]
    return sources


def test_grafanas_datasources_lead_to_services_of_the_stack(rendered: dict[str, Release]) -> None:
    sources = {source["uid"]: source for source in _grafana_datasources(rendered)}
    assert {"prometheus", "loki", "tempo"} <= set(sources)
    for uid in ("loki", "tempo"):
        service_backend(list(rendered.values()), sources[uid]["url"])


def test_every_pod_passes_its_namespaces_pod_security_level(rendered: dict[str, Release]) -> None:
    levels = {
        name: labels.get("pod-security.kubernetes.io/enforce", "privileged")
        for name, labels in namespace_labels().items()
    }
    refused = {}
    for release in rendered.values():
        assert release.namespace in levels, f"{release.name}: namespace {release.namespace} is not prepared"
        for name, spec in release.pod_specs():
            problems = violations(spec, levels[release.namespace])
            if problems:
                refused[f"{release.namespace}/{name}"] = problems
    assert not refused, refused


# Keys of a program's configuration that name a directory or file it writes (Loki's path_prefix and
# working_directory, Tempo's wal.path and local.path ...).
_DATA_PATH_KEY = re.compile(r"(^|_)(path|path_prefix|dir|directory)$")


def _data_paths(node: Any, key: str = "") -> list[str]:
    if isinstance(node, dict):
        return [path for child, value in node.items() for path in _data_paths(value, str(child))]
    if isinstance(node, list):
        return [path for item in node for path in _data_paths(item, key)]
    if isinstance(node, str) and node.startswith("/") and _DATA_PATH_KEY.search(key):
        return [node]
    return []


def test_every_path_a_read_only_container_writes_is_a_mounted_volume(rendered: dict[str, Release]) -> None:
    unmounted: dict[str, list[str]] = {}
    checked = 0
    for release in rendered.values():
        for name, spec in release.pod_specs():
            for container in containers(spec):
                if not container.get("securityContext", {}).get("readOnlyRootFilesystem"):
                    continue
                writable = [
                    PurePosixPath(mount["mountPath"])
                    for mount in container.get("volumeMounts", [])
                    if not mount.get("readOnly")
                ]
                for config_path, config in mounted_config(release, spec, container):
                    for path in _data_paths(config):
                        checked += 1
                        if not any(PurePosixPath(path).is_relative_to(mount) for mount in writable):
                            unmounted.setdefault(f"{name}/{container['name']} ({config_path})", []).append(
                                path
                            )
    assert checked, "no read-only container with a configuration naming its data paths was found"
    assert not unmounted, f"paths written on a read-only root filesystem: {unmounted}"
