"""Offline checks of the Helm chart charts/distributed-sum.

helm lint and helm template run with the defaults, every overlay (values-*.yaml) and a few value
combinations; every rendered object is validated strictly by kubeconform against the pinned Kubernetes
schemas and the Prometheus Operator CRDs, and the Strimzi resources against the Strimzi API model.
The rest reads the rendered objects: security, probes, resources, the single ledger writer, Kafka,
NetworkPolicies, tracing, and that values.schema.json rejects bad values.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from pydantic_settings import BaseSettings

from distsum import settings
from distsum.settings import KafkaSettings
from ledger_svc.config import LedgerSettings
from sum_svc.config import SumSettings
from tests.chart.chart_tools import (
    OVERLAYS,
    RELEASE,
    Manifest,
    Rendered,
    Values,
    Verdict,
    component_of,
    env_of,
    helm_lint,
    helm_template,
    kubeconform,
    only_container,
    pod_spec,
    render_notes,
    strimzi_check,
)

EXTERNAL_BOOTSTRAP = "kafka-0.example.internal:9092,kafka-1.example.internal:9092"
SCENARIOS: dict[str, Values] = {
    "defaults": Values(),
    **{overlay.stem: Values(files=(overlay,)) for overlay in OVERLAYS},
    "external-kafka": Values(
        sets=(
            "kafka.strimzi.enabled=false",
            "kafka.externalBootstrapServers=" + EXTERNAL_BOOTSTRAP.replace(",", r"\,"),
        )
    ),
    "hpa": Values(sets=("sum.autoscaling.enabled=true",)),
    "monitoring-off": Values(
        sets=(
            "monitoring.serviceMonitor.enabled=false",
            "monitoring.prometheusRule.enabled=false",
            "monitoring.dashboards.enabled=false",
        )
    ),
    "network-policy-off": Values(sets=("networkPolicy.enabled=false",)),
    "tracing-off": Values(sets=("tracing.enabled=false",)),
}


@pytest.fixture(scope="session")
def renders() -> dict[str, Rendered]:
    return {name: Rendered.of(values) for name, values in SCENARIOS.items()}


@pytest.fixture(scope="session")
def defaults(renders: dict[str, Rendered]) -> Rendered:
    return renders["defaults"]


@pytest.fixture(scope="session")
def rendered_files(renders: dict[str, Rendered], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("rendered")
    files = {name: directory / f"{name}.yaml" for name in renders}
    for name, path in files.items():
        path.write_text(renders[name].text)
    return files


@pytest.fixture(scope="session")
def kubeconform_verdicts(rendered_files: dict[str, Path]) -> dict[str, list[Verdict]]:
    """One kubeconform run over every render: schemas are loaded once."""
    by_file = kubeconform(list(rendered_files.values()))
    return {name: by_file[str(path)] for name, path in rendered_files.items()}


@pytest.fixture(scope="session")
def strimzi_report(
    defaults: Rendered, rendered_files: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, list[str]]:
    """One Strimzi check over every render plus a Kafka with fields v1 dropped; problems per file."""
    kafka = yaml.safe_load(yaml.safe_dump(defaults.one("Kafka", "kafka")))
    kafka["spec"]["kafka"]["replicas"] = 3  # v1beta2 only: replicas live in the KafkaNodePool now
    kafka["spec"]["kafka"]["listeners"][0]["tlss"] = False
    broken = tmp_path_factory.mktemp("strimzi") / "broken.yaml"
    broken.write_text(yaml.safe_dump(kafka))
    files = {**rendered_files, "broken": broken}

    result = strimzi_check(list(files.values()))

    assert "resources checked" in result.stdout, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    return {name: [line for line in lines if line.startswith(f"{path}: ")] for name, path in files.items()}


# --- helm lint and kubeconform -------------------------------------------------------------------


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_helm_lint_strict_passes(scenario: str) -> None:
    result = helm_lint(SCENARIOS[scenario])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_rendered_object_is_valid_for_the_pinned_kubernetes(
    scenario: str, kubeconform_verdicts: dict[str, list[Verdict]], renders: dict[str, Rendered]
) -> None:
    verdicts = kubeconform_verdicts[scenario]
    strimzi = [obj for obj in renders[scenario].objects if obj["apiVersion"].startswith("kafka.strimzi.io/")]
    checked = [
        v for v in verdicts if not (v.status == "statusError" and "could not find schema" in v.message)
    ]
    problems = [v for v in checked if v.status != "statusValid"]
    assert not problems, "\n".join(f"{v.kind}/{v.name}: {v.status} {v.message}" for v in problems)
    # Only the Strimzi resources lack a JSON schema; test_strimzi_resources_match_the_v1_api checks them.
    assert len(checked) == len(renders[scenario].objects) - len(strimzi)


def test_kubeconform_rejects_a_misspelled_field(defaults: Rendered, tmp_path: Path) -> None:
    deployment = defaults.one("Deployment", "sum")
    broken_deployment = yaml.safe_load(yaml.safe_dump(deployment))
    broken_deployment["spec"]["template"]["spec"]["containers"][0]["imagePullPolcy"] = "Always"
    monitor = defaults.one("ServiceMonitor", "sum")
    broken_monitor = yaml.safe_load(yaml.safe_dump(monitor))
    broken_monitor["spec"]["endpoints"][0]["intervall"] = "15s"
    unknown = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump_all([broken_deployment, broken_monitor, unknown]))

    verdicts = {v.kind: v for v in kubeconform([path])[str(path)]}

    assert verdicts["Deployment"].status == "statusInvalid"
    assert "imagePullPolcy" in verdicts["Deployment"].message
    assert verdicts["ServiceMonitor"].status == "statusInvalid"
    assert "intervall" in verdicts["ServiceMonitor"].message
    assert verdicts["Widget"].status == "statusError"


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_strimzi_resources_match_the_v1_api(scenario: str, strimzi_report: dict[str, list[str]]) -> None:
    assert strimzi_report[scenario] == []


def test_strimzi_check_rejects_fields_v1_dropped(strimzi_report: dict[str, list[str]]) -> None:
    problems = "\n".join(strimzi_report["broken"])
    assert ".spec.kafka.replicas: not in kafka.strimzi.io/v1" in problems
    assert ".spec.kafka.listeners[0].tlss: unknown field" in problems


# --- values.schema.json and the chart's own checks -------------------------------------------------


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        (Values(sets=("sum.replicaCount=0",)), "/sum/replicaCount"),
        (Values(set_strings=("sum.replicaCount=two",)), "/sum/replicaCount"),
        (Values(sets=("ledger.replicaCount=2",)), "/ledger/replicaCount"),
        (Values(sets=("sum.grpcPort=70000",)), "/sum/grpcPort"),
        (Values(sets=("ledger.httpPort=0",)), "/ledger/httpPort"),
        (Values(sets=("image.pullPolicy=Sometimes",)), "/image/pullPolicy"),
        (Values(sets=("sum.image.pullPolicy=always",)), "/sum/image/pullPolicy"),
        (Values(sets=("kafka.strimzi.enabled=false",)), "externalBootstrapServers"),
        (Values(sets=("kafka.topic=no spaces",)), "/kafka/topic"),
        (Values(sets=("kafka.strimzi.storage.type=tmpfs",)), "/kafka/strimzi/storage/type"),
        (Values(sets=("ledger.persistence.size=lots",)), "/ledger/persistence/size"),
        (Values(sets=("monitoring.serviceMonitor.interval=15",)), "/monitoring/serviceMonitor/interval"),
        (Values(sets=("tracing.otlpEndpoint=tempo:4317",)), "/tracing/otlpEndpoint"),
        (Values(sets=("logLevel=LOUD",)), "/logLevel"),
        (Values(sets=("sum.unknownKey=1",)), "unknownKey"),
        (Values(sets=("nonsense=1",)), "nonsense"),
        (Values(sets=("kafka.strimzi.replicationFactor=3",)), "replicationFactor must not exceed"),
        (Values(sets=("sum.idempotency.ttlSeconds=10",)), "ttlSeconds must be greater"),
        (Values(sets=("sum.autoscaling.minReplicas=5", "sum.autoscaling.maxReplicas=3")), "minReplicas"),
    ],
    ids=lambda v: ",".join(v.sets + v.set_strings) if isinstance(v, Values) else None,
)
def test_bad_values_are_rejected(values: Values, complaint: str) -> None:
    result = helm_template(values)
    assert result.returncode != 0, f"rendered despite bad values {values}"
    assert complaint in result.stderr


def test_the_chart_renders_every_object_with_its_defaults(defaults: Rendered) -> None:
    assert defaults.kinds() >= {
        "Deployment", "StatefulSet", "Service", "ServiceAccount", "PodDisruptionBudget", "NetworkPolicy",
        "ServiceMonitor", "Kafka", "KafkaNodePool", "KafkaTopic", "Pod",
    }  # fmt: skip
    assert "HorizontalPodAutoscaler" not in defaults.kinds()


# --- security --------------------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_pod_meets_the_restricted_pod_security_standard(
    scenario: str, renders: dict[str, Rendered]
) -> None:
    pods = list(renders[scenario].pod_specs())
    assert pods
    for name, spec in pods:
        assert_restricted(name, spec)


def assert_restricted(name: str, spec: Manifest) -> None:
    pod = spec.get("securityContext", {})
    assert pod.get("runAsNonRoot") is True, name
    assert pod.get("runAsUser") == 10001 and pod.get("runAsGroup") == 10001, name
    assert pod.get("seccompProfile") == {"type": "RuntimeDefault"}, name
    assert spec["automountServiceAccountToken"] is False, name
    assert not {"hostNetwork", "hostPID", "hostIPC"} & spec.keys(), name
    assert all("hostPath" not in volume for volume in spec.get("volumes", [])), name
    for container in spec["containers"] + spec.get("initContainers", []):
        context = container["securityContext"]
        where = f"{name}/{container['name']}"
        assert context["allowPrivilegeEscalation"] is False, where
        assert context["readOnlyRootFilesystem"] is True, where
        assert context["capabilities"] == {"drop": ["ALL"]}, where
        assert context.get("privileged", False) is False, where
        assert context["runAsNonRoot"] is True, where
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}, where


def test_service_accounts_never_mount_tokens(defaults: Rendered) -> None:
    accounts = defaults.of_kind("ServiceAccount")
    assert {component_of(sa) for sa in accounts} == {"sum", "ledger"}
    assert all(sa["automountServiceAccountToken"] is False for sa in accounts)
    for workload in defaults.of_kind("Deployment") + defaults.of_kind("StatefulSet"):
        assert pod_spec(workload)["serviceAccountName"] == workload["metadata"]["name"]


# --- workloads -------------------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_workload_has_resources_and_probes(scenario: str, renders: dict[str, Rendered]) -> None:
    rendered = renders[scenario]
    for workload in rendered.of_kind("Deployment") + rendered.of_kind("StatefulSet"):
        container = only_container(workload)
        resources = container["resources"]
        assert {"cpu", "memory"} <= resources["requests"].keys(), workload["metadata"]["name"]
        assert "memory" in resources["limits"], workload["metadata"]["name"]
        assert {"startupProbe", "readinessProbe", "livenessProbe"} <= container.keys()
    for name, spec in rendered.pod_specs():
        assert all("resources" in container for container in spec["containers"]), name


def test_sum_probes_keep_pods_alive_while_kafka_is_down(defaults: Rendered) -> None:
    sum_container = only_container(defaults.one("Deployment", "sum"))
    assert sum_container["readinessProbe"]["grpc"] == {"port": 50051, "service": ""}
    assert sum_container["livenessProbe"]["grpc"] == {"port": 50051, "service": "liveness"}
    assert sum_container["startupProbe"]["grpc"] == {"port": 50051, "service": "liveness"}


def test_sum_pods_get_longer_than_their_drain_to_stop(defaults: Rendered) -> None:
    deployment = defaults.one("Deployment", "sum")
    container = only_container(deployment)
    drain = int(env_of(container)["SUM_SHUTDOWN_GRACE_SECONDS"])
    pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert pod_spec(deployment)["terminationGracePeriodSeconds"] > pre_stop + drain


def test_sum_replicas_spread_over_nodes_and_zones(defaults: Rendered) -> None:
    deployment = defaults.one("Deployment", "sum")
    assert deployment["spec"]["replicas"] == 2
    spread = pod_spec(deployment)["topologySpreadConstraints"]
    assert {c["topologyKey"] for c in spread} == {"kubernetes.io/hostname", "topology.kubernetes.io/zone"}
    assert {c["whenUnsatisfiable"] for c in spread} == {"ScheduleAnyway"}


def test_hpa_takes_over_the_sum_replica_count(renders: dict[str, Rendered]) -> None:
    rendered = renders["hpa"]
    hpa = rendered.one("HorizontalPodAutoscaler", "sum")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"]["name"] == rendered.one("Deployment", "sum")["metadata"]["name"]
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    assert "replicas" not in rendered.one("Deployment", "sum")["spec"]
    assert renders["values-production"].one("HorizontalPodAutoscaler", "sum")


def test_services_name_their_ports(defaults: Rendered) -> None:
    sum_ports = {p["name"]: p for p in defaults.one("Service", "sum")["spec"]["ports"]}
    assert sum_ports["grpc"]["port"] == 50051 and sum_ports["grpc"]["appProtocol"] == "grpc"
    assert sum_ports["metrics"]["port"] == 9464
    ledger_ports = {p["name"]: p for p in defaults.one("Service", "ledger")["spec"]["ports"]}
    assert ledger_ports["http"]["port"] == 8080


def test_ledger_is_a_single_writer_with_its_own_volume(defaults: Rendered) -> None:
    ledger = defaults.one("StatefulSet", "ledger")
    assert ledger["spec"]["replicas"] == 1
    (claim,) = ledger["spec"]["volumeClaimTemplates"]
    container = only_container(ledger)
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod_spec(ledger)["volumes"]}
    assert mounts["/data"] == claim["metadata"]["name"]
    assert "emptyDir" in volumes[mounts["/tmp"]]
    assert volumes[mounts["/dev/shm"]]["emptyDir"]["medium"] == "Memory"
    assert pod_spec(ledger)["securityContext"]["fsGroup"] == 10001
    env = env_of(container)
    assert env["LEDGER_DATA_DIR"] == "/data"
    assert env["LEDGER_RUN_DIR"] == "/tmp/ledger"
    assert env["LEDGER_GROUP_INSTANCE_ID"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["LEDGER_DEAD_LETTER_TOPIC"] == "sums.dlq"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"


def test_a_long_release_name_leaves_room_for_the_statefulset_revision_label() -> None:
    # Pods of a StatefulSet carry controller-revision-hash=<name>-<up to 10 characters>, at most 63.
    rendered = Rendered.of(Values(sets=("fullnameOverride=" + "a" * 63,)))
    (ledger,) = rendered.of_kind("StatefulSet")
    assert len(ledger["metadata"]["name"]) <= 52
    assert ledger["metadata"]["name"].endswith("-ledger")


# The settings the services really read: pydantic-settings ignores unknown variables (extra="ignore"), so a
# misspelt name would be dropped silently, and a value they cannot parse stops them at start.
SERVICE_SETTINGS: dict[str, tuple[type[BaseSettings], ...]] = {
    "sum": (SumSettings, KafkaSettings),
    "ledger": (LedgerSettings, KafkaSettings),
}


@pytest.mark.parametrize("component", SERVICE_SETTINGS)
def test_every_service_variable_is_a_real_setting_the_service_accepts(
    component: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Values at the top of their schema ranges, from a file: Helm reads numbers in values files as floats
    # and prints 10000000 as 1e+07 unless the template casts it to an integer (--set keeps integers).
    big = tmp_path / "big.yaml"
    big.write_text("sum:\n  idempotency:\n    maxEntries: 10000000\nledger:\n  batchMaxMessages: 100000\n")
    rendered = Rendered.of(Values(files=(big,)))
    workload = rendered.one("Deployment" if component == "sum" else "StatefulSet", component)
    env = env_of(only_container(workload))
    settings_types = SERVICE_SETTINGS[component]
    prefixes = {str(t.model_config.get("env_prefix")): t for t in settings_types}
    for name in os.environ:
        if name.startswith(tuple(prefixes)):
            monkeypatch.delenv(name)
    for name, value in env.items():
        prefix = next((p for p in prefixes if name.startswith(p)), None)
        if prefix is None:
            continue
        field_name = name.removeprefix(prefix).lower()
        assert field_name in prefixes[prefix].model_fields, f"{name} is not a setting of {component}"
        monkeypatch.setenv(name, value if isinstance(value, str) else f"{component}-pod-0")
    for settings_type in settings_types:
        settings.load(settings_type)


# --- Kafka ----------------------------------------------------------------------------------------


def test_strimzi_kafka_cluster_with_both_topics(defaults: Rendered) -> None:
    kafka = defaults.one("Kafka", "kafka")
    cluster = kafka["metadata"]["name"]
    assert kafka["apiVersion"] == "kafka.strimzi.io/v1"
    assert {"name": "plain", "port": 9092, "type": "internal", "tls": False}.items() <= (
        kafka["spec"]["kafka"]["listeners"][0].items()
    )
    (pool,) = defaults.of_kind("KafkaNodePool")
    assert pool["metadata"]["labels"]["strimzi.io/cluster"] == cluster
    assert pool["spec"]["roles"] == ["controller", "broker"]
    topics = {t["spec"]["topicName"]: t for t in defaults.of_kind("KafkaTopic")}
    assert topics.keys() == {"sums", "sums.dlq"}
    assert topics["sums"]["spec"]["partitions"] == 6
    assert {t["metadata"]["labels"]["strimzi.io/cluster"] for t in topics.values()} == {cluster}
    for workload in (defaults.one("Deployment", "sum"), defaults.one("StatefulSet", "ledger")):
        assert (
            env_of(only_container(workload))["KAFKA_BOOTSTRAP_SERVERS"] == f"{cluster}-kafka-bootstrap:9092"
        )


def test_production_kafka_is_replicated_and_persistent(renders: dict[str, Rendered]) -> None:
    production = renders["values-production"]
    (pool,) = production.of_kind("KafkaNodePool")
    assert pool["spec"]["replicas"] == 3
    assert pool["spec"]["storage"]["type"] == "persistent-claim"
    config = production.one("Kafka", "kafka")["spec"]["kafka"]["config"]
    assert config["min.insync.replicas"] == 2 and config["default.replication.factor"] == 3
    assert {t["spec"]["replicas"] for t in production.of_kind("KafkaTopic")} == {3}


@pytest.mark.parametrize("scenario", ["external-kafka", "values-external-kafka"])
def test_external_kafka_replaces_strimzi(scenario: str, renders: dict[str, Rendered]) -> None:
    rendered = renders[scenario]
    assert not [obj for obj in rendered.objects if obj["apiVersion"].startswith("kafka.strimzi.io/")]
    bootstrap = env_of(only_container(rendered.one("Deployment", "sum")))["KAFKA_BOOTSTRAP_SERVERS"]
    assert "," in bootstrap and "kafka-bootstrap" not in bootstrap
    egress = rendered.one("NetworkPolicy", "ledger")["spec"]["egress"]
    kafka_rule = egress[0]  # then the trace receiver's
    assert kafka_rule["ports"] == [{"port": 9092, "protocol": "TCP"}]
    # Without peers in networkPolicy.externalKafka.to, any address on the Kafka port is allowed.
    assert kafka_rule.get("to", [{"ipBlock": {}}])[0].keys() == {"ipBlock"}


# --- NetworkPolicies ------------------------------------------------------------------------------


def test_default_deny_selects_only_the_charts_own_pods(defaults: Rendered) -> None:
    (deny,) = [p for p in defaults.of_kind("NetworkPolicy") if p["metadata"]["name"].endswith("default-deny")]
    selector = deny["spec"]["podSelector"]
    assert selector["matchLabels"]["app.kubernetes.io/instance"] == RELEASE
    assert selector["matchExpressions"] == [
        {"key": "app.kubernetes.io/component", "operator": "In", "values": ["sum", "ledger", "test"]}
    ]
    assert deny["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert "ingress" not in deny["spec"] and "egress" not in deny["spec"]


def test_dns_egress_is_allowed(defaults: Rendered) -> None:
    (dns,) = [p for p in defaults.of_kind("NetworkPolicy") if p["metadata"]["name"].endswith("allow-dns")]
    (rule,) = dns["spec"]["egress"]
    assert rule["to"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}}
    ]
    assert {(p["port"], p["protocol"]) for p in rule["ports"]} == {(53, "UDP"), (53, "TCP")}


def test_services_reach_kafka_and_tempo_and_nothing_else(defaults: Rendered) -> None:
    cluster = defaults.one("Kafka", "kafka")["metadata"]["name"]
    for component in ("sum", "ledger"):
        kafka_rule, tempo_rule = defaults.one("NetworkPolicy", component)["spec"]["egress"]
        assert kafka_rule["to"][0]["podSelector"]["matchLabels"]["strimzi.io/cluster"] == cluster
        assert kafka_rule["ports"] == [{"port": 9092, "protocol": "TCP"}]
        assert tempo_rule["to"][0]["namespaceSelector"]["matchLabels"] == {
            "kubernetes.io/metadata.name": "monitoring"
        }
        assert tempo_rule["ports"] == [{"port": 4317, "protocol": "TCP"}]


def test_ingress_is_limited_to_clients_tests_and_prometheus(defaults: Rendered) -> None:
    sum_ingress = defaults.one("NetworkPolicy", "sum")["spec"]["ingress"]
    assert [rule["ports"][0]["port"] for rule in sum_ingress] == ["grpc", "grpc", "metrics"]
    metrics_peer = sum_ingress[2]["from"][0]
    assert metrics_peer["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "monitoring"}
    ledger_ingress = defaults.one("NetworkPolicy", "ledger")["spec"]["ingress"]
    assert {port["port"] for rule in ledger_ingress for port in rule["ports"]} == {"http"}
    # Strimzi applies the listener's peers to the brokers' own NetworkPolicy.
    peers = defaults.one("Kafka", "kafka")["spec"]["kafka"]["listeners"][0]["networkPolicyPeers"]
    assert [p["podSelector"]["matchLabels"]["app.kubernetes.io/component"] for p in peers] == [
        "sum",
        "ledger",
    ]


def test_helm_test_pods_may_reach_the_services(defaults: Rendered) -> None:
    egress = defaults.one("NetworkPolicy", "test")["spec"]["egress"]
    targets = {
        rule["to"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/component"]: rule for rule in egress
    }
    assert targets["sum"]["ports"] == [{"port": "grpc", "protocol": "TCP"}]
    assert targets["ledger"]["ports"] == [{"port": "http", "protocol": "TCP"}]


def test_network_policies_can_be_turned_off(renders: dict[str, Rendered]) -> None:
    rendered = renders["network-policy-off"]
    assert "NetworkPolicy" not in rendered.kinds()
    assert "networkPolicyPeers" not in rendered.one("Kafka", "kafka")["spec"]["kafka"]["listeners"][0]


def test_without_tracing_there_is_no_tempo_egress(renders: dict[str, Rendered]) -> None:
    rendered = renders["tracing-off"]
    for component in ("sum", "ledger"):
        assert len(rendered.one("NetworkPolicy", component)["spec"]["egress"]) == 1


# --- monitoring and tracing ------------------------------------------------------------------------


def test_service_monitors_scrape_the_metrics_ports(defaults: Rendered) -> None:
    expected = {"sum": "metrics", "ledger": "http"}
    for component, port in expected.items():
        monitor = defaults.one("ServiceMonitor", component)
        assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
        assert monitor["spec"]["endpoints"] == [
            {"port": port, "path": "/metrics", "scheme": "http", "interval": "15s"}
        ]
        service_labels = defaults.one("Service", component)["metadata"]["labels"]
        assert monitor["spec"]["selector"]["matchLabels"].items() <= service_labels.items()


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


# --- helm tests and NOTES ---------------------------------------------------------------------------


def test_helm_test_pods_check_grpc_health_and_readyz(defaults: Rendered) -> None:
    pods = {pod["spec"]["containers"][0]["name"]: pod for pod in defaults.of_kind("Pod")}
    assert pods.keys() == {"grpc-health", "readyz"}
    for pod in pods.values():
        assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
        assert pod["spec"]["restartPolicy"] == "Never"
    grpc_script = pods["grpc-health"]["spec"]["containers"][0]["command"]
    assert grpc_script[:2] == ["python", "-c"] and "grpc_health" in grpc_script[2]
    assert pods["grpc-health"]["spec"]["containers"][0]["image"] == "distributed-sum/sum-svc:0.1.0"
    readyz_script = pods["readyz"]["spec"]["containers"][0]["command"]
    assert readyz_script[:2] == ["python", "-c"] and "urllib" in readyz_script[2]
    assert pods["readyz"]["spec"]["containers"][0]["image"] == "distributed-sum/ledger-svc:0.1.0"


def test_helm_test_scripts_are_valid_python(defaults: Rendered) -> None:
    for pod in defaults.of_kind("Pod"):
        compile(pod["spec"]["containers"][0]["command"][2], pod["metadata"]["name"], "exec")


def test_notes_show_how_to_call_the_services(tmp_path: Path) -> None:
    notes = render_notes(Values(), tmp_path)
    for example in (
        "port-forward svc/distsum-distributed-sum-sum 50051:50051",
        "grpcurl -plaintext 127.0.0.1:50051 grpc.health.v1.Health/Check",
        "grpcurl -plaintext 127.0.0.1:50051 list",
        "distsum.v1.SumService/Add",
        "distsum add 2 3",
        "distsum total",
        "pod-security.kubernetes.io/enforce=restricted",
        "distsum-distributed-sum-kafka-bootstrap:9092",
    ):
        assert example in notes


def test_notes_for_an_external_kafka_name_its_bootstrap(tmp_path: Path) -> None:
    notes = render_notes(SCENARIOS["external-kafka"], tmp_path)
    assert EXTERNAL_BOOTSTRAP in notes
    assert "must already exist" in notes
