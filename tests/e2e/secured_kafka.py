"""Kafka as the e2e cluster runs it (issue 19): one KRaft node from the local image, locked down (TLS
only, client certificates, ACLs), with each service's certificate in the Secret the chart's
external-Kafka values name. The tooling's super user creates the topics and grants the services exactly
what localstack.kafka_acls grants (the chart's KafkaUsers grant the same where Strimzi runs)."""

from __future__ import annotations

import base64
import dataclasses
from pathlib import PurePosixPath
from typing import Any

from distsum.kafka.security import client_security
from distsum.settings import KafkaSettings
from localstack.certificates import KAFKA_BROKER, KAFKA_TOOLING, CertificateAuthority
from localstack.kafka_acls import LEDGER_PRINCIPAL, SUM_PRINCIPAL, service_grants
from localstack.kafka_broker import SUPER_USERS
from tests.e2e.kube import Settings, kafka_manifests, topics_job, wait_job_complete, wait_pods_ready

# The Secrets charts/distributed-sum/values-external-kafka.yaml names: the brokers' CA and each service's
# identity (user.crt, user.key).
CA_SECRET = "kafka-ca"
USER_SECRETS = {"sum": "distsum-sum-kafka", "ledger": "distsum-ledger-kafka"}
BROKER_SECRET = "kafka-broker-tls"
TOOLING_SECRET = "kafka-tooling"
TOPIC, DEAD_LETTERS, LEDGER_GROUP = "sums", "sums.dlq", "distsum-ledger"  # the chart's defaults
READY_SECONDS = 180
PORT = 9092  # the image's certificate listener (offline/kafka-image.sh)


def secret(name: str, files: dict[str, bytes]) -> dict[str, Any]:
    data = {key: base64.b64encode(value).decode() for key, value in files.items()}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "type": "Opaque", "data": data}


def tls_client_settings(directory: str) -> dict[str, Any]:
    """librdkafka's settings of a client with ca.crt, user.crt and user.key under `directory`, made as
    the services make theirs."""
    where = PurePosixPath(directory)
    kafka = KafkaSettings.model_construct(
        security_protocol="SSL",
        ca_file=where / "ca.crt",
        cert_file=where / "user.crt",
        key_file=where / "user.key",
    )
    return client_security(kafka)


def create_secrets(core: Any, namespace: str, host: str) -> None:
    """A CA of the test's own, the broker's key pair for `host`, and one client certificate per identity."""
    ca = CertificateAuthority("distsum e2e Kafka CA")
    broker = ca.issue(KAFKA_BROKER, dns=[host], ips=["127.0.0.1"], server=True, client=True)
    secrets = [
        secret(BROKER_SECRET, {"broker.pem": broker.key_pem + broker.cert_pem, "ca.crt": ca.cert_pem}),
        secret(CA_SECRET, {"ca.crt": ca.cert_pem}),
    ]
    principals = {USER_SECRETS["sum"]: SUM_PRINCIPAL, USER_SECRETS["ledger"]: LEDGER_PRINCIPAL}
    for name, principal in {**principals, TOOLING_SECRET: KAFKA_TOOLING}.items():
        pair = ca.issue(principal, client=True)
        secret_files = {"user.crt": pair.cert_pem, "user.key": pair.key_pem, "ca.crt": ca.cert_pem}
        secrets.append(secret(name, secret_files))
    for body in secrets:
        core.create_namespaced_secret(namespace, body)


def start_kafka(apps: Any, batch: Any, core: Any, namespace: str, settings: Settings) -> str:
    """The locked-down node in `namespace`, the chart's two topics and the services' ACLs on it; its
    bootstrap address."""
    host = f"kafka.{namespace}.svc.cluster.local"
    create_secrets(core, namespace, host)
    deployment, service = kafka_manifests(namespace, settings.kafka_image, BROKER_SECRET, SUPER_USERS)
    apps.create_namespaced_deployment(namespace, deployment)
    core.create_namespaced_service(namespace, service)
    wait_pods_ready(core, namespace, "app.kubernetes.io/name=kafka", 1, READY_SECONDS)
    bootstrap = f"{host}:{PORT}"
    mount = "/etc/distsum/kafka"
    grants = [dataclasses.asdict(g) for g in service_grants(TOPIC, DEAD_LETTERS, LEDGER_GROUP)]
    job = topics_job(
        bootstrap,
        f"distributed-sum/sum-svc:{settings.image_tag}",
        tls_client_settings(mount),
        grants,
        {TOOLING_SECRET: mount},
    )
    batch.create_namespaced_job(namespace, job)
    wait_job_complete(batch, core, namespace, "kafka-topics", READY_SECONDS)
    return bootstrap


def release_values() -> list[str]:
    """helm arguments that turn the chart's external-Kafka values (which show SCRAM on port 9093, with
    the Secrets named above) to mutual TLS on this broker's port."""
    return ["--set", "kafka.authentication=tls", "--set", f"networkPolicy.externalKafka.ports[0].port={PORT}"]
