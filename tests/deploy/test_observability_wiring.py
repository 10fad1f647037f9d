"""The observability releases point at each other consistently: Grafana datasource uids and links,
Alloy -> Loki, the app's OTLP endpoint -> Tempo, and the labels Prometheus and Grafana select on."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider

from distsum.logs import JsonFormatter
from tests.deploy import alloy_config
from tests.deploy.layout import (
    APP_CHART,
    CLUSTER_SCRIPTS,
    REPO,
    load_yaml,
    pinned,
    service_url,
    shell_assignment,
    values,
)


def _datasources() -> dict[str, dict[str, Any]]:
    grafana = values("kube-prometheus-stack")["grafana"]
    by_uid = {source["uid"]: source for source in grafana["additionalDataSources"]}
    by_uid[grafana["sidecar"]["datasources"]["uid"]] = {"type": "prometheus"}
    return by_uid


def _alloy() -> str:
    content: str = values("alloy")["alloy"]["configMap"]["content"]
    return content


def _loki_base_url() -> str:
    loki = values("loki")
    assert loki["gateway"]["enabled"] is False, "with the gateway the Service would be loki-gateway:80"
    return service_url(
        loki["fullnameOverride"], pinned()["LOKI_NAMESPACE"], loki["loki"]["server"]["http_listen_port"]
    )


def _tempo_url(port: int | str) -> str:
    return service_url(values("tempo")["fullnameOverride"], pinned()["TEMPO_NAMESPACE"], port)


def _otlp_grpc_port() -> str:
    endpoint = values("tempo")["tempo"]["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"]
    return str(endpoint).rpartition(":")[2]


def _real_log_line() -> tuple[dict[str, Any], str, str]:
    """A log line as the services write it, inside a real span: (parsed, raw, trace id)."""
    tracer = TracerProvider().get_tracer("tests.deploy")
    record = logging.LogRecord("sum_svc", logging.INFO, __file__, 1, "added", None, None)
    with tracer.start_as_current_span("Add") as span:
        line = JsonFormatter("sum-svc").format(record)
        trace_id = format(span.get_span_context().trace_id, "032x")
    return json.loads(line), line, trace_id


def test_datasources_have_the_fixed_uids() -> None:
    sources = _datasources()
    assert {uid: source["type"] for uid, source in sources.items()} == {
        "prometheus": "prometheus",
        "loki": "loki",
        "tempo": "tempo",
    }
    assert sources["loki"]["url"] == _loki_base_url()
    assert sources["tempo"]["url"] == _tempo_url(values("tempo")["tempo"]["server"]["http_listen_port"])


def test_logs_link_to_traces_through_the_trace_id_of_real_log_lines() -> None:
    (field,) = _datasources()["loki"]["jsonData"]["derivedFields"]
    assert field["datasourceUid"] == "tempo"
    assert field["url"] == "$${__value.raw}", (
        "'$$' stops Grafana provisioning from expanding it as a variable"
    )
    _, raw, trace_id = _real_log_line()
    match = re.search(field["matcherRegex"], raw)
    assert match and match.group(1) == trace_id


def test_traces_link_to_logs_by_trace_id_in_structured_metadata() -> None:
    link = _datasources()["tempo"]["jsonData"]["tracesToLogsV2"]
    assert link["datasourceUid"] == "loki"
    query = re.fullmatch(r"\{(\w+)=~?\"[^\"]*\"\} \| (\w+)=\"\$\$\{__trace\.traceId\}\"", link["query"])
    assert query, f"unexpected query {link['query']!r}"
    stream_label, metadata_key = query.groups()
    process = alloy_config.block(_alloy(), 'loki.process "json"')
    assert stream_label in alloy_config.map_keys(alloy_config.block(process, "stage.labels"), "values")
    assert metadata_key in alloy_config.map_keys(
        alloy_config.block(process, "stage.structured_metadata"), "values"
    )


def test_alloy_extracts_fields_that_real_log_lines_carry() -> None:
    parsed, _, _ = _real_log_line()
    process = alloy_config.block(_alloy(), 'loki.process "json"')
    extracted = alloy_config.map_keys(alloy_config.block(process, "stage.json"), "expressions")
    labels = alloy_config.map_keys(alloy_config.block(process, "stage.labels"), "values")
    metadata = alloy_config.map_keys(alloy_config.block(process, "stage.structured_metadata"), "values")
    assert extracted <= set(parsed)
    assert labels == {"level", "service"}
    assert metadata == {"trace_id"}, "a per-request trace id must not become a label (one stream per request)"
    assert (
        alloy_config.string_attribute(alloy_config.block(process, "stage.timestamp"), "source") in extracted
    )


def test_alloy_writes_to_the_loki_service() -> None:
    write = alloy_config.block(_alloy(), 'loki.write "loki"')
    assert alloy_config.string_attribute(write, "url") == _loki_base_url() + "/loki/api/v1/push"
    assert "forward_to = [loki.write.loki.receiver]" in alloy_config.block(_alloy(), 'loki.process "json"')


def test_loki_is_one_monolithic_replica_on_the_filesystem() -> None:
    loki = values("loki")
    assert loki["deploymentMode"] == "SingleBinary"
    assert loki["singleBinary"]["replicas"] == 1
    assert [loki[target]["replicas"] for target in ("read", "write", "backend")] == [0, 0, 0]
    assert loki["loki"]["storage"]["type"] == "filesystem"
    assert loki["loki"]["auth_enabled"] is False
    assert not loki["chunksCache"]["enabled"] and not loki["resultsCache"]["enabled"]


def test_tempo_receives_otlp_on_the_standard_ports() -> None:
    protocols = values("tempo")["tempo"]["receivers"]["otlp"]["protocols"]
    assert protocols["grpc"]["endpoint"].endswith(":4317")
    assert protocols["http"]["endpoint"].endswith(":4318")
    assert values("tempo")["fullnameOverride"] == "tempo" and pinned()["TEMPO_NAMESPACE"] == "monitoring"


def test_prometheus_selects_release_labelled_monitors_and_rules_everywhere() -> None:
    spec = values("kube-prometheus-stack")["prometheus"]["prometheusSpec"]
    release = pinned()["KPS_RELEASE"]
    for kind in ("serviceMonitor", "rule"):
        assert spec[f"{kind}Selector"] == {"matchLabels": {"release": release}}
        assert spec[f"{kind}NamespaceSelector"] == {}


def test_kind_friendly_scrapes_and_locked_down_grafana() -> None:
    stack = values("kube-prometheus-stack")
    for component in ("kubeControllerManager", "kubeScheduler", "kubeEtcd", "kubeProxy"):
        assert stack[component]["enabled"] is False
    grafana = stack["grafana"]
    assert grafana["grafana.ini"]["auth.anonymous"]["enabled"] is False
    assert grafana["admin"]["existingSecret"] == shell_assignment(
        CLUSTER_SCRIPTS / "prepare.sh", "grafana_secret"
    )
    prepare = (CLUSTER_SCRIPTS / "prepare.sh").read_text()
    for key in (grafana["admin"]["userKey"], grafana["admin"]["passwordKey"]):
        assert f"{key}=" in prepare
    dashboards = grafana["sidecar"]["dashboards"]
    assert dashboards["enabled"] and dashboards["searchNamespace"] == "ALL"


def test_strimzi_watches_every_namespace_with_restricted_pods() -> None:
    strimzi = values("strimzi-kafka-operator")
    assert strimzi["watchAnyNamespace"] is True
    assert {"name": "STRIMZI_POD_SECURITY_PROVIDER_CLASS", "value": "restricted"} in strimzi["extraEnvs"]


@pytest.fixture
def app_values() -> dict[str, Any]:
    loaded: dict[str, Any] = load_yaml(APP_CHART / "values.yaml")
    return loaded


def test_app_chart_defaults_reach_this_stack(app_values: dict[str, Any]) -> None:
    pins = pinned()
    assert app_values["tracing"]["otlpEndpoint"] == _tempo_url(_otlp_grpc_port())
    policy = app_values["networkPolicy"]
    assert policy["tracing"]["namespace"] == pins["TEMPO_NAMESPACE"]
    assert policy["monitoringNamespace"] == pins["KPS_NAMESPACE"]
    monitoring = app_values["monitoring"]
    for kind in ("serviceMonitor", "prometheusRule"):
        assert monitoring[kind]["labels"] == {"release": pins["KPS_RELEASE"]}
    sidecar = values("kube-prometheus-stack")["grafana"]["sidecar"]["dashboards"]
    assert monitoring["dashboards"]["labels"] == {sidecar["label"]: sidecar["labelValue"]}


def test_strimzi_operator_is_the_version_the_chart_resources_are_checked_against() -> None:
    """The operator chart's version is the io.strimzi:api version the Strimzi check compiles against."""
    pom = (REPO / "tests" / "chart" / "strimzi" / "pom.xml").read_text()
    assert f"<strimzi.version>{pinned()['STRIMZI_VERSION']}</strimzi.version>" in pom
