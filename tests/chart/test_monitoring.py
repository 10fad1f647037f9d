"""ServiceMonitors, dashboards, the PrometheusRule and tracing, as the chart renders them."""

from __future__ import annotations

import json
import re

import pytest

from tests.chart.chart_tools import CHART, RELEASE, REPO, Rendered, Values, env_of, only_container

COMPONENT = "app.kubernetes.io/component"


def test_service_monitors_scrape_the_metrics_ports(defaults: Rendered) -> None:
    for component in ("sum", "ledger"):
        monitor = defaults.one("ServiceMonitor", component)
        assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
        assert monitor["spec"]["endpoints"] == [
            {"port": "metrics", "path": "/metrics", "scheme": "http", "interval": "15s"}
        ]
        service_labels = defaults.one("Service", component)["metadata"]["labels"]
        assert monitor["spec"]["selector"]["matchLabels"].items() <= service_labels.items()


@pytest.mark.parametrize(("component", "api"), [("sum", "grpc"), ("ledger", "http")])
def test_a_load_balancer_publishes_the_api_only_and_the_metrics_stay_scraped(
    renders: dict[str, Rendered], component: str, api: str
) -> None:
    rendered = renders["load-balancer"]
    services = [s for s in rendered.of_kind("Service") if s["metadata"]["labels"][COMPONENT] == component]
    by_type = {service["spec"]["type"]: service for service in services}
    assert [p["name"] for p in by_type["LoadBalancer"]["spec"]["ports"]] == [api]
    assert [p["name"] for p in by_type["ClusterIP"]["spec"]["ports"]] == ["metrics"]
    selector = rendered.one("ServiceMonitor", component)["spec"]["selector"]["matchLabels"]
    assert selector.items() <= by_type["ClusterIP"]["metadata"]["labels"].items()
    # Outside callers come in through the ipBlock peer, on the API port only.
    ingress = rendered.one("NetworkPolicy", component)["spec"]["ingress"]
    (api_rule, _tests) = [rule for rule in ingress if rule["ports"] == [{"port": api, "protocol": "TCP"}]]
    assert {"ipBlock": {"cidr": "203.0.113.0/24"}} in api_rule["from"]


@pytest.mark.parametrize("scenario", ["monitoring-off", "values-minimal"])
def test_monitoring_off_renders_no_prometheus_operator_objects(
    scenario: str, renders: dict[str, Rendered]
) -> None:
    rendered = renders[scenario]
    assert not [obj for obj in rendered.objects if obj["apiVersion"].startswith("monitoring.coreos.com/")]
    dashboards = [
        cm for cm in rendered.of_kind("ConfigMap") if "grafana_dashboard" in cm["metadata"].get("labels", {})
    ]
    assert not dashboards


def test_tracing_env_names_the_pod_and_namespace(defaults: Rendered) -> None:
    for component, service in (("sum", "sum-svc"), ("ledger", "ledger")):
        workload = defaults.one("Deployment" if component == "sum" else "StatefulSet", component)
        env = env_of(only_container(workload))
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://tempo.monitoring.svc.cluster.local:4317"
        assert env["OTEL_SERVICE_NAME"] == service
        assert env["K8S_POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
        assert env["K8S_NAMESPACE_NAME"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
        assert "k8s.pod.name=$(K8S_POD_NAME)" in env["OTEL_RESOURCE_ATTRIBUTES"]
        assert "k8s.namespace.name=$(K8S_NAMESPACE_NAME)" in env["OTEL_RESOURCE_ATTRIBUTES"]


def test_tracing_off_exports_nothing(renders: dict[str, Rendered]) -> None:
    env = env_of(only_container(renders["tracing-off"].one("Deployment", "sum")))
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" not in env


# A namespace other than the release name, so that a template scoping by .Release.Name instead of
# .Release.Namespace shows.
OTHER_NAMESPACE = "distsum-test"
FULLNAME = f"{RELEASE}-distributed-sum"


def test_one_configmap_per_dashboard_with_the_sidecar_label_and_folder_annotation() -> None:
    rendered = Rendered.of(
        Values(set_jsons=('monitoring.dashboards.annotations={"grafana_folder":"distsum"}',)), OTHER_NAMESPACE
    )
    maps = {m["metadata"]["name"]: m for m in rendered.of_kind("ConfigMap")}
    for path in sorted((CHART / "dashboards").glob("*.json")):
        configmap = maps[f"{FULLNAME}-dashboard-{path.stem}"]
        metadata = configmap["metadata"]
        assert metadata["labels"]["grafana_dashboard"] == "1"
        assert metadata["labels"]["app.kubernetes.io/instance"] == RELEASE
        assert metadata["annotations"] == {"grafana_folder": "distsum"}
        assert json.loads(configmap["data"][path.name]) == json.loads(path.read_text())


def test_alerts_link_their_runbook_headings_when_the_runbooks_address_is_given() -> None:
    runbooks = "https://git.invalid/team/distributed-sum/blob/main/docs/runbooks.md"
    (rule,) = Rendered.of(Values(sets=(f"monitoring.prometheusRule.runbookUrl={runbooks}",))).of_kind(
        "PrometheusRule"
    )
    headings = set(re.findall(r"^## (\w+)$", (REPO / "docs" / "runbooks.md").read_text(), re.MULTILINE))
    alerts = [r for group in rule["spec"]["groups"] for r in group["rules"]]
    for alert in alerts:
        assert alert["alert"] in headings, f"docs/runbooks.md has no heading for {alert['alert']}"
        assert alert["annotations"]["runbook"] == f"docs/runbooks.md, alert {alert['alert']}."
        assert alert["annotations"]["runbook_url"] == f"{runbooks}#{alert['alert'].lower()}"
    (default,) = Rendered.of().of_kind("PrometheusRule")
    assert not [r for g in default["spec"]["groups"] for r in g["rules"] if "runbook_url" in r["annotations"]]


def test_the_prometheus_rule_is_labelled_for_the_operator_and_scoped_to_the_release_namespace() -> None:
    (rule,) = Rendered.of(namespace=OTHER_NAMESPACE).of_kind("PrometheusRule")
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    alerts = [r for group in rule["spec"]["groups"] for r in group["rules"]]
    for alert in alerts:
        assert alert["labels"]["severity"] in {"critical", "warning"}, alert["alert"]
        assert {"summary", "description", "runbook"} <= set(alert["annotations"]), alert["alert"]
        assert alert["for"], alert["alert"]
        assert re.search(r"by \(namespace[,)]", alert["expr"]), alert["alert"]
        scoped = alert["expr"].count(f'{{namespace="{OTHER_NAMESPACE}"')
        assert alert["expr"].count("{") == scoped, alert["alert"]


def test_thresholds_and_windows_come_from_the_values() -> None:
    values = Values(
        sets=("monitoring.prometheusRule.stalledFor=33m", "monitoring.prometheusRule.deadLettersWindow=44m"),
        set_jsons=(
            "monitoring.prometheusRule.errorRatioThreshold=0.2",
            "monitoring.prometheusRule.p99LatencyThresholdSeconds=1.5",
            "monitoring.prometheusRule.consumerLagThreshold=7",
        ),
    )
    (rule,) = Rendered.of(values, OTHER_NAMESPACE).of_kind("PrometheusRule")
    exprs = {r["alert"]: r["expr"] for group in rule["spec"]["groups"] for r in group["rules"]}
    assert exprs["SumErrorRatioHigh"].endswith("> 0.2")
    assert exprs["SumLatencyP99High"].endswith("> 1.5")
    assert exprs["LedgerConsumerLagHigh"].endswith("> 7")
    assert "[33m]" in exprs["LedgerStalled"]
    assert "[44m]" in exprs["LedgerDeadLettersGrowing"]


def test_monitoring_objects_can_be_turned_off() -> None:
    values = Values(sets=("monitoring.dashboards.enabled=false", "monitoring.prometheusRule.enabled=false"))
    rendered = Rendered.of(values, OTHER_NAMESPACE)
    assert not rendered.of_kind("PrometheusRule")
    assert not [m for m in rendered.of_kind("ConfigMap") if "-dashboard-" in m["metadata"]["name"]]
