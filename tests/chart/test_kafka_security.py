"""Kafka locked down (issue 19): the Strimzi listener, authorization and KafkaUsers, the Secrets each
service mounts and the KAFKA_* settings pointing at them, for Strimzi and for an external Kafka."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

import pytest

from localstack.kafka_acls import LEDGER_PRINCIPAL, SUM_PRINCIPAL, Grant, service_grants
from tests.chart.chart_tools import Manifest, Rendered, env_of, only_container, pod_spec

FULLNAME = "distsum-distributed-sum"
WORKLOADS = {"sum": "Deployment", "ledger": "StatefulSet"}
USERS = {"sum": f"{FULLNAME}-sum-kafka", "ledger": f"{FULLNAME}-ledger-kafka"}


def mounted_files(rendered: Rendered, component: str) -> dict[str, tuple[str, str]]:
    """Every file the service's container sees from a Secret: path -> (Secret, key)."""
    spec = pod_spec(rendered.one(WORKLOADS[component], component))
    volumes = {v["name"]: v["secret"] for v in spec.get("volumes", []) if "secret" in v}
    files = {}
    for mount in only_container(rendered.one(WORKLOADS[component], component)).get("volumeMounts", []):
        if (secret := volumes.get(mount["name"])) is not None:
            for item in secret["items"]:
                path = str(PurePosixPath(mount["mountPath"], item["path"]))
                files[path] = (secret["secretName"], item["key"])
    return files


def kafka_settings(rendered: Rendered, component: str) -> tuple[dict[str, Any], dict[str, tuple[str, str]]]:
    """The service's KAFKA_* security settings, and the Secret and key behind each file they name."""
    env = env_of(only_container(rendered.one(WORKLOADS[component], component)))
    settings = {k: v for k, v in env.items() if k.startswith("KAFKA_") and k not in ("KAFKA_TOPIC",)}
    settings.pop("KAFKA_BOOTSTRAP_SERVERS")
    files = mounted_files(rendered, component)
    named = {k: files[v] for k, v in settings.items() if k.endswith("_FILE")}
    assert len(named) == sum(k.endswith("_FILE") for k in settings), f"a file not mounted: {settings}"
    return settings, named


def test_strimzi_listens_with_tls_client_certificates_and_acls(defaults: Rendered) -> None:
    kafka = defaults.one("Kafka", "kafka")["spec"]
    (listener,) = kafka["kafka"]["listeners"]
    assert (listener["port"], listener["tls"], listener["authentication"]) == (9093, True, {"type": "tls"})
    assert kafka["kafka"]["authorization"] == {"type": "simple"}
    assert kafka["entityOperator"]["userOperator"] == {}


@pytest.mark.parametrize("component", ["sum", "ledger"])
def test_each_service_presents_its_own_kafka_user_certificate(defaults: Rendered, component: str) -> None:
    cluster = defaults.one("Kafka", "kafka")["metadata"]["name"]
    settings, files = kafka_settings(defaults, component)
    assert settings.pop("KAFKA_SECURITY_PROTOCOL") == "SSL"
    assert files == {
        "KAFKA_CA_FILE": (f"{cluster}-cluster-ca-cert", "ca.crt"),
        "KAFKA_CERT_FILE": (USERS[component], "user.crt"),
        "KAFKA_KEY_FILE": (USERS[component], "user.key"),
    }
    assert settings.keys() == files.keys()


def chart_grants(rendered: Rendered) -> set[Grant]:
    """The KafkaUsers' ACLs, named as localstack.kafka_acls names them."""
    principals = {USERS["sum"]: SUM_PRINCIPAL, USERS["ledger"]: LEDGER_PRINCIPAL}
    patterns = {"literal": "LITERAL", "prefix": "PREFIXED"}
    grants = set()
    for user in rendered.of_kind("KafkaUser"):
        authorization = user["spec"]["authorization"]
        assert authorization["type"] == "simple"
        for acl in authorization["acls"]:
            resource = acl["resource"]
            assert acl["host"] == "*"
            for operation in acl["operations"]:
                grants.add(
                    Grant(
                        principals[user["metadata"]["name"]],
                        resource["type"].upper(),
                        resource["name"],
                        patterns[resource["patternType"]],
                        operation.upper(),
                    )
                )
    return grants


def test_the_kafka_users_get_exactly_what_the_tests_enforce_on_a_broker(defaults: Rendered) -> None:
    # tests/integration/test_kafka_security.py shows on a real broker that these grants are enough for
    # both services and keep each from the other's part; the chart must grant the same, no more.
    assert {u["metadata"]["name"] for u in defaults.of_kind("KafkaUser")} == set(USERS.values())
    assert chart_grants(defaults) == set(service_grants("sums", "sums.dlq", "distsum-ledger"))


def test_with_scram_each_service_reads_its_password_from_its_user_secret(
    renders: dict[str, Rendered],
) -> None:
    rendered = renders["kafka-scram"]
    (listener,) = rendered.one("Kafka", "kafka")["spec"]["kafka"]["listeners"]
    assert listener["authentication"] == {"type": "scram-sha-512"}
    assert {u["spec"]["authentication"]["type"] for u in rendered.of_kind("KafkaUser")} == {"scram-sha-512"}
    for component in WORKLOADS:
        settings, files = kafka_settings(rendered, component)
        assert settings["KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
        assert settings["KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
        assert settings["KAFKA_SASL_USERNAME"] == USERS[component]
        assert files["KAFKA_SASL_PASSWORD_FILE"] == (USERS[component], "password")
        assert "KAFKA_CERT_FILE" not in settings


def test_an_external_kafka_takes_the_named_secrets(renders: dict[str, Rendered]) -> None:
    tls = renders["external-kafka"]
    assert not tls.of_kind("KafkaUser")
    for component in WORKLOADS:
        _, files = kafka_settings(tls, component)
        assert files == {
            "KAFKA_CA_FILE": ("brokers-ca", "bundle.pem"),
            "KAFKA_CERT_FILE": (f"{component}-kafka-cert", "user.crt"),
            "KAFKA_KEY_FILE": (f"{component}-kafka-cert", "user.key"),
        }
    scram = renders["values-external-kafka"]
    for component in WORKLOADS:
        settings, files = kafka_settings(scram, component)
        assert settings["KAFKA_SASL_USERNAME"] == f"distsum-{component}"
        assert files["KAFKA_SASL_PASSWORD_FILE"] == (f"distsum-{component}-kafka", "password")


def test_plaintext_kafka_is_only_the_migrations_explicit_choice(renders: dict[str, Rendered]) -> None:
    rendered = renders["kafka-plaintext"]
    kafka = rendered.one("Kafka", "kafka")["spec"]
    (listener,) = kafka["kafka"]["listeners"]
    assert (listener["name"], listener["port"], listener["tls"]) == ("plain", 9092, False)
    assert "authorization" not in kafka["kafka"] and "userOperator" not in kafka["entityOperator"]
    assert not rendered.of_kind("KafkaUser")
    for component in WORKLOADS:
        settings, files = kafka_settings(rendered, component)
        assert settings == {"KAFKA_SECURITY_PROTOCOL": "PLAINTEXT"} and files == {}
        egress: list[Manifest] = rendered.one("NetworkPolicy", component)["spec"]["egress"]
        assert egress[0]["ports"] == [{"port": 9092, "protocol": "TCP"}]
