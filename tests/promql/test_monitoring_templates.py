"""The chart's dashboard ConfigMaps and PrometheusRule, as helm renders them."""

from __future__ import annotations

import json
import re
from typing import Any

from tests.chart.chart_tools import CHART, RELEASE
from tests.promql.prometheus import NAMESPACE, helm_template

FULLNAME = f"{RELEASE}-distributed-sum"


def _of_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def test_one_configmap_per_dashboard_with_the_sidecar_label_and_folder_annotation() -> None:
    objects = helm_template("--set-json", 'monitoring.dashboards.annotations={"grafana_folder":"distsum"}')
    maps = {m["metadata"]["name"]: m for m in _of_kind(objects, "ConfigMap")}
    for path in sorted((CHART / "dashboards").glob("*.json")):
        configmap = maps[f"{FULLNAME}-dashboard-{path.stem}"]
        metadata = configmap["metadata"]
        assert metadata["labels"]["grafana_dashboard"] == "1"
        assert metadata["labels"]["app.kubernetes.io/instance"] == RELEASE
        assert metadata["annotations"] == {"grafana_folder": "distsum"}
        assert json.loads(configmap["data"][path.name]) == json.loads(path.read_text())


def test_the_prometheus_rule_is_labelled_for_the_operator_and_scoped_to_the_release_namespace() -> None:
    (rule,) = _of_kind(helm_template(), "PrometheusRule")
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    alerts = [r for group in rule["spec"]["groups"] for r in group["rules"]]
    for alert in alerts:
        assert alert["labels"]["severity"] in {"critical", "warning"}, alert["alert"]
        assert {"summary", "description", "runbook"} <= set(alert["annotations"]), alert["alert"]
        assert alert["for"], alert["alert"]
        assert re.search(r"by \(namespace[,)]", alert["expr"]), alert["alert"]
        assert alert["expr"].count("{") == alert["expr"].count(f'{{namespace="{NAMESPACE}"'), alert["alert"]


def test_thresholds_and_windows_come_from_the_values() -> None:
    (rule,) = _of_kind(
        helm_template(
            "--set-json",
            "monitoring.prometheusRule.errorRatioThreshold=0.2",
            "--set-json",
            "monitoring.prometheusRule.p99LatencyThresholdSeconds=1.5",
            "--set-json",
            "monitoring.prometheusRule.consumerLagThreshold=7",
            "--set",
            "monitoring.prometheusRule.stalledFor=33m",
            "--set",
            "monitoring.prometheusRule.deadLettersWindow=44m",
        ),
        "PrometheusRule",
    )
    exprs = {r["alert"]: r["expr"] for group in rule["spec"]["groups"] for r in group["rules"]}
    assert exprs["SumErrorRatioHigh"].endswith("> 0.2")
    assert exprs["SumLatencyP99High"].endswith("> 1.5")
    assert exprs["LedgerConsumerLagHigh"].endswith("> 7")
    assert "[33m]" in exprs["LedgerStalled"]
    assert "[44m]" in exprs["LedgerDeadLettersGrowing"]


def test_monitoring_objects_can_be_turned_off() -> None:
    objects = helm_template(
        "--set", "monitoring.dashboards.enabled=false", "--set", "monitoring.prometheusRule.enabled=false"
    )
    assert not _of_kind(objects, "PrometheusRule")
    assert not [m for m in _of_kind(objects, "ConfigMap") if "-dashboard-" in m["metadata"]["name"]]
