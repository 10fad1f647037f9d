"""The Strimzi Kafka cluster or an external one, and the NetworkPolicies around the services."""

from __future__ import annotations

import pytest

from tests.chart.chart_tools import RELEASE, Rendered, Values, env_of, only_container

# --- Kafka ----------------------------------------------------------------------------------------


def test_strimzi_kafka_cluster_with_both_topics(defaults: Rendered) -> None:
    kafka = defaults.one("Kafka", "kafka")
    cluster = kafka["metadata"]["name"]
    assert kafka["apiVersion"] == "kafka.strimzi.io/v1"
    (listener,) = kafka["spec"]["kafka"]["listeners"]
    assert {"name": "tls", "port": 9093, "type": "internal", "tls": True}.items() <= listener.items()
    (pool,) = defaults.of_kind("KafkaNodePool")
    assert pool["metadata"]["labels"]["strimzi.io/cluster"] == cluster
    assert pool["spec"]["roles"] == ["controller", "broker"]
    topics = {t["spec"]["topicName"]: t for t in defaults.of_kind("KafkaTopic")}
    assert topics.keys() == {"sums", "sums.dlq"}
    assert topics["sums"]["spec"]["partitions"] == 6
    assert {t["metadata"]["labels"]["strimzi.io/cluster"] for t in topics.values()} == {cluster}
    for workload in (defaults.one("Deployment", "sum"), defaults.one("StatefulSet", "ledger")):
        assert (
            env_of(only_container(workload))["KAFKA_BOOTSTRAP_SERVERS"] == f"{cluster}-kafka-bootstrap:9093"
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
    port = 9093 if scenario == "values-external-kafka" else 9092  # the file's brokers listen with TLS there
    assert kafka_rule["ports"] == [{"port": port, "protocol": "TCP"}]
    # Without peers in networkPolicy.externalKafka.to, any address on the Kafka port is allowed.
    assert kafka_rule.get("to", [{"ipBlock": {}}])[0].keys() == {"ipBlock"}


# --- NetworkPolicies ------------------------------------------------------------------------------


def test_default_deny_selects_only_the_charts_own_pods(defaults: Rendered) -> None:
    (deny,) = [p for p in defaults.of_kind("NetworkPolicy") if p["metadata"]["name"].endswith("default-deny")]
    selector = deny["spec"]["podSelector"]
    assert selector["matchLabels"]["app.kubernetes.io/instance"] == RELEASE
    assert selector["matchExpressions"] == [
        {
            "key": "app.kubernetes.io/component",
            "operator": "In",
            "values": ["sum", "ledger", "ledger-backup", "test"],
        }
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


def test_dns_peers_and_ports_are_values(renders: dict[str, Rendered]) -> None:
    (dns,) = [
        p
        for p in renders["dns-elsewhere"].of_kind("NetworkPolicy")
        if p["metadata"]["name"].endswith("allow-dns")
    ]
    (rule,) = dns["spec"]["egress"]
    assert rule["to"] == [
        {"ipBlock": {"cidr": "169.254.20.10/32"}},
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "openshift-dns"}}},
    ]
    assert rule["ports"] == [{"port": 5353, "protocol": "UDP"}, {"port": 5353, "protocol": "TCP"}]


def test_services_reach_kafka_and_tempo_and_nothing_else(defaults: Rendered) -> None:
    cluster = defaults.one("Kafka", "kafka")["metadata"]["name"]
    for component in ("sum", "ledger"):
        kafka_rule, tempo_rule = defaults.one("NetworkPolicy", component)["spec"]["egress"]
        assert kafka_rule["to"][0]["podSelector"]["matchLabels"]["strimzi.io/cluster"] == cluster
        assert kafka_rule["ports"] == [{"port": 9093, "protocol": "TCP"}]  # the TLS listener
        assert tempo_rule["to"][0]["namespaceSelector"]["matchLabels"] == {
            "kubernetes.io/metadata.name": "monitoring"
        }
        assert tempo_rule["ports"] == [{"port": 4317, "protocol": "TCP"}]


def test_ingress_is_limited_to_clients_tests_and_prometheus(defaults: Rendered) -> None:
    # Clients, then the helm tests, on the API port; Prometheus only on the metrics port (the monitoring
    # namespace cannot read the ledger's entries).
    for component, api in (("sum", "grpc"), ("ledger", "http")):
        ingress = defaults.one("NetworkPolicy", component)["spec"]["ingress"]
        assert [[port["port"] for port in rule["ports"]] for rule in ingress] == [[api], [api], ["metrics"]]
        metrics_peer = ingress[2]["from"][0]
        assert metrics_peer["namespaceSelector"]["matchLabels"] == {
            "kubernetes.io/metadata.name": "monitoring"
        }
        # Only the Prometheus pods there, not every pod of the monitoring namespace.
        assert metrics_peer["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "prometheus"}
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


@pytest.mark.parametrize(
    ("endpoint", "port"),
    [
        ("http://otel-collector.observability:4318", 4318),
        ("https://traces.example.com", 443),
        ("http://tempo", 80),
    ],
)
def test_the_trace_egress_port_is_the_endpoints(endpoint: str, port: int) -> None:
    rendered = Rendered.of(Values(sets=(f"tracing.otlpEndpoint={endpoint}",)))
    for component in ("sum", "ledger"):
        _, tempo_rule = rendered.one("NetworkPolicy", component)["spec"]["egress"]
        assert tempo_rule["ports"] == [{"port": port, "protocol": "TCP"}]


def test_production_kafka_nodes_run_on_different_nodes(renders: dict[str, Rendered]) -> None:
    pool = renders["values-production"].one("KafkaNodePool", "kafka")
    (term,) = pool["spec"]["template"]["pod"]["affinity"]["podAntiAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert term["labelSelector"]["matchLabels"] == {
        "strimzi.io/cluster": renders["values-production"].one("Kafka", "kafka")["metadata"]["name"],
        "strimzi.io/pool-name": pool["metadata"]["name"],
    }
    assert "template" not in renders["defaults"].one("KafkaNodePool", "kafka")["spec"]


def test_a_kafka_pod_template_is_merged_over_the_spread(renders: dict[str, Rendered]) -> None:
    pod = renders["kafka-template"].one("KafkaNodePool", "kafka")["spec"]["template"]["pod"]
    assert pod["priorityClassName"] == "kafka"
    assert pod["tolerations"][0]["key"] == "dedicated"
    assert "podAntiAffinity" in pod["affinity"]


def test_kafka_keeps_its_log_on_a_volume_unless_a_throwaway_cluster_says_otherwise(
    renders: dict[str, Rendered],
) -> None:
    """An ephemeral broker that restarts loses the events the ledger had not read yet."""
    assert renders["defaults"].one("KafkaNodePool", "kafka")["spec"]["storage"]["type"] == "persistent-claim"
    assert renders["values-kind"].one("KafkaNodePool", "kafka")["spec"]["storage"]["type"] == "ephemeral"
