"""The chart tests' scenarios (value sets) and their renders, made once per session.

Every check runs offline on what `helm template` renders (tests/chart/chart_tools.py has the pinned tools).
"""

from __future__ import annotations

import pytest

from tests.chart.chart_tools import CHART, OVERLAYS, Rendered, Values

EXTERNAL_BOOTSTRAP = "kafka-0.example.internal:9092,kafka-1.example.internal:9092"
# Where production pulls from (values-production.yaml requires a registry).
REGISTRY = "registry.invalid/distsum"
# What production pins the images by (values-production.yaml requires both).
SUM_DIGEST = "sha256:" + "1" * 64
LEDGER_DIGEST = "sha256:" + "2" * 64
BACKUP_FILE = "ledger-20261207T101700.000000Z.db"
SCENARIOS: dict[str, Values] = {
    "defaults": Values(),
    **{overlay.stem: Values(files=(overlay,)) for overlay in OVERLAYS if overlay.stem != "values-production"},
    "values-production": Values(
        files=(CHART / "values-production.yaml",),
        sets=(
            f"image.registry={REGISTRY}",
            f"sum.image.digest={SUM_DIGEST}",
            f"ledger.image.digest={LEDGER_DIGEST}",
        ),
    ),
    # An external Kafka with mutual TLS (values-external-kafka.yaml shows SCRAM).
    "external-kafka": Values(
        sets=(
            "kafka.strimzi.enabled=false",
            "kafka.externalBootstrapServers=" + EXTERNAL_BOOTSTRAP.replace(",", r"\,"),
            "kafka.external.caSecret.name=brokers-ca",
            "kafka.external.caSecret.key=bundle.pem",
            "kafka.external.sum.secretName=sum-kafka-cert",
            "kafka.external.ledger.secretName=ledger-kafka-cert",
        )
    ),
    # Strimzi with SCRAM users instead of client certificates; and the open Kafka kept for a migration.
    "kafka-scram": Values(sets=("kafka.authentication=scram-sha-512",)),
    "kafka-plaintext": Values(sets=("kafka.authentication=none", "kafka.allowPlaintext=true")),
    "hpa": Values(sets=("sum.autoscaling.enabled=true",)),
    # A headless Service for clients that balance over the sum pods themselves.
    "sum-headless": Values(sets=("sum.service.headless=true",)),
    "load-balancer": Values(
        sets=("sum.service.type=LoadBalancer", "ledger.service.type=LoadBalancer"),
        set_jsons=(
            'networkPolicy.sumClients=[{"ipBlock": {"cidr": "203.0.113.0/24"}}]',
            'networkPolicy.ledgerClients=[{"ipBlock": {"cidr": "203.0.113.0/24"}}]',
        ),
    ),
    "monitoring-off": Values(
        sets=(
            "monitoring.serviceMonitor.enabled=false",
            "monitoring.prometheusRule.enabled=false",
            "monitoring.dashboards.enabled=false",
        )
    ),
    "network-policy-off": Values(sets=("networkPolicy.enabled=false",)),
    # A pod template of the user's merged over the spread (the Strimzi API model checks the result).
    "kafka-template": Values(
        sets=("kafka.strimzi.spreadNodes=true",),
        set_jsons=(
            'kafka.strimzi.template={"pod": {"priorityClassName": "kafka", "tolerations":'
            ' [{"key": "dedicated", "operator": "Equal", "value": "kafka", "effect": "NoSchedule"}]}}',
        ),
    ),
    # NodeLocal DNSCache (a link-local address) and OpenShift's DNS (port 5353) at once.
    "dns-elsewhere": Values(
        set_jsons=(
            'networkPolicy.dns.to=[{"ipBlock": {"cidr": "169.254.20.10/32"}},'
            ' {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "openshift-dns"}}}]',
            'networkPolicy.dns.ports=[{"port": 5353, "protocol": "UDP"}, {"port": 5353, "protocol": "TCP"}]',
        )
    ),
    "tracing-off": Values(sets=("tracing.enabled=false",)),
    # Scheduled backups, and a ledger started to restore one.
    "backups": Values(sets=("ledger.backup.enabled=true", f"ledger.backup.restoreFrom={BACKUP_FILE}")),
    # The three sources of certificates (the defaults are the chart's own CA), and a mesh instead.
    "cert-manager": Values(
        sets=("tls.certManager.issuerRef.name=platform-ca", "tls.certManager.issuerRef.kind=ClusterIssuer")
    ),
    "existing-secrets": Values(
        sets=(
            "tls.existingSecrets.sum=sum-server",
            "tls.existingSecrets.ledger=ledger-server",
            "tls.existingSecrets.testClient=release-checker",
        )
    ),
    "mesh": Values(sets=("tls.enabled=false", "tls.meshProvidesMtls=true")),
    # A reader that may not add, and an identity from outside the chart allowed to add.
    "auditor": Values(
        set_jsons=(
            'tls.clients=[{"name": "operator", "add": true, "read": true},'
            ' {"name": "auditor", "add": false, "read": true}]',
            'tls.extraAllowedClients.sum=["spiffe://example.org/ns/billing/sa/invoicer"]',
        )
    ),
}


@pytest.fixture(scope="session")
def renders() -> dict[str, Rendered]:
    return {name: Rendered.of(values) for name, values in SCENARIOS.items()}


@pytest.fixture(scope="session")
def defaults(renders: dict[str, Rendered]) -> Rendered:
    return renders["defaults"]
