"""charts/distributed-sum rendered by the real helm with exactly the values skaffold (and up.sh, see
test_up_flow) pass: the stack's labels, endpoints and images land where this stack expects them."""

from __future__ import annotations

import re
from typing import Any

import yaml

from tests.chart.chart_tools import helm, kube_version
from tests.deploy.layout import REPO, pinned, skaffold_app_values, values

TAG = "test-tag"


def _render(profile: str | None) -> list[dict[str, Any]]:
    pins = pinned()
    sets = [f"--set={key}={value}" for key, value in skaffold_app_values(profile, TAG).items()]
    rendered = helm(
        "template", pins["APP_RELEASE"], str(REPO / pins["APP_CHART"]),
        "--namespace", pins["APP_NAMESPACE"], "--values", str(REPO / pins["APP_VALUES"]), *sets,
        "--kube-version", kube_version(),
    )  # fmt: skip
    assert rendered.returncode == 0, rendered.stderr
    return [doc for doc in yaml.safe_load_all(rendered.stdout) if doc]


def _of_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [doc for doc in docs if doc["kind"] == kind]


def _env(docs: list[dict[str, Any]], name: str) -> set[str]:
    found = set()
    for doc in _of_kind(docs, "Deployment") + _of_kind(docs, "StatefulSet"):
        for container in doc["spec"]["template"]["spec"]["containers"]:
            found |= {entry.get("value") for entry in container.get("env", []) if entry["name"] == name}
    return found


def _images(docs: list[dict[str, Any]]) -> set[str]:
    return {
        container["image"]
        for doc in _of_kind(docs, "Deployment") + _of_kind(docs, "StatefulSet")
        for container in doc["spec"]["template"]["spec"]["containers"]
    }


def test_full_stack_render_is_scraped_traced_and_dashboarded() -> None:
    docs = _render(None)
    release = {"release": pinned()["KPS_RELEASE"]}
    monitors = _of_kind(docs, "ServiceMonitor")
    assert monitors and all(release.items() <= doc["metadata"]["labels"].items() for doc in monitors)
    (rule,) = _of_kind(docs, "PrometheusRule")
    assert release.items() <= rule["metadata"]["labels"].items()
    sidecar = values("kube-prometheus-stack")["grafana"]["sidecar"]["dashboards"]
    dashboards = [
        doc
        for doc in _of_kind(docs, "ConfigMap")
        if doc["metadata"].get("labels", {}).get(sidecar["label"]) == sidecar["labelValue"]
    ]
    assert dashboards
    tempo = values("tempo")
    port = tempo["tempo"]["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"].rpartition(":")[2]
    otlp = f"http://{tempo['fullnameOverride']}.{pinned()['TEMPO_NAMESPACE']}.svc.cluster.local:{port}"
    assert _env(docs, "OTEL_EXPORTER_OTLP_ENDPOINT") == {otlp}
    assert _images(docs) == {f"distributed-sum/sum-svc:{TAG}", f"distributed-sum/ledger-svc:{TAG}"}


def test_minimal_render_has_no_monitoring_objects_and_exports_no_traces() -> None:
    docs = _render("minimal")
    assert not _of_kind(docs, "ServiceMonitor") and not _of_kind(docs, "PrometheusRule")
    sidecar_label = values("kube-prometheus-stack")["grafana"]["sidecar"]["dashboards"]["label"]
    assert not [
        doc for doc in _of_kind(docs, "ConfigMap") if sidecar_label in doc["metadata"].get("labels", {})
    ]
    assert _env(docs, "OTEL_EXPORTER_OTLP_ENDPOINT") == set()
    assert _images(docs) == {f"distributed-sum/sum-svc:{TAG}", f"distributed-sum/ledger-svc:{TAG}"}


def test_kafka_uses_the_api_the_pinned_strimzi_serves() -> None:
    (kafka,) = _of_kind(_render("minimal"), "Kafka")
    assert kafka["apiVersion"] == "kafka.strimzi.io/v1"
    # kafka.strimzi.io/v1 appeared in Strimzi 0.49.0 (and is the only API from 1.0.0 on).
    major, minor, _ = (int(part) for part in re.findall(r"\d+", pinned()["STRIMZI_VERSION"])[:3])
    assert (major, minor) >= (0, 49)
