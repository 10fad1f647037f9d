"""helm lint, kubeconform and the Strimzi API model over every scenario's render, and values.schema.json
rejecting bad values."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.chart.chart_tools import (
    CHART,
    Rendered,
    Values,
    Verdict,
    component_of,
    helm_lint,
    helm_template,
    kubeconform,
    only_container,
    strimzi_check,
)
from tests.chart.conftest import LEDGER_DIGEST, REGISTRY, SCENARIOS, SUM_DIGEST


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
        (Values(set_jsons=("networkPolicy.dns.to=[]",)), "/networkPolicy/dns/to"),
        (Values(sets=("networkPolicy.dns.ports[0].port=0",)), "/networkPolicy/dns/ports"),
        (Values(sets=("sum.unknownKey=1",)), "unknownKey"),
        (Values(sets=("nonsense=1",)), "nonsense"),
        (Values(sets=("kafka.strimzi.replicationFactor=3",)), "replicationFactor must not exceed"),
        (Values(sets=("sum.idempotency.ttlSeconds=10",)), "ttlSeconds must be greater"),
        (Values(sets=("sum.autoscaling.minReplicas=5", "sum.autoscaling.maxReplicas=3")), "minReplicas"),
        (Values(sets=("tls.enabled=false",)), "set tls.meshProvidesMtls=true if a service mesh"),
        (Values(sets=("tls.clientAuth=false",)), "leaves the APIs open"),
        (Values(sets=("kafka.authentication=none",)), "set kafka.allowPlaintext=true for a migration"),
        (Values(sets=("kafka.authentication=kerberos",)), "/kafka/authentication"),
        (
            Values(sets=("kafka.strimzi.enabled=false", "kafka.externalBootstrapServers=k:9093")),
            "kafka.external.sum.secretName is required with kafka.authentication=tls",
        ),
        (
            Values(
                sets=(
                    "kafka.strimzi.enabled=false",
                    "kafka.externalBootstrapServers=k:9093",
                    "kafka.authentication=scram-sha-512",
                    "kafka.external.sum.secretName=s",
                    "kafka.external.ledger.secretName=l",
                )
            ),
            "kafka.external.sum.username is required with kafka.authentication=scram-sha-512",
        ),
        (
            Values(sets=("tls.enabled=false", "tls.meshProvidesMtls=true", "ledger.service.type=NodePort")),
            "ledger.service.type=NodePort publishes the ledger API outside the cluster in plaintext",
        ),
        (
            Values(sets=("tls.certManager.issuerRef.name=ca", "tls.existingSecrets.sum=s")),
            "choose one source of certificates",
        ),
        (
            Values(sets=("tls.existingSecrets.sum=s", "tls.existingSecrets.ledger=l")),
            "tls.existingSecrets.testClient is empty",
        ),
        (Values(sets=("tls.testClient=nobody",)), "tls.testClient=nobody must be one of tls.clients"),
        (
            Values(set_jsons=('tls.clients=[{"name": "operator", "add": true, "read": false}]',)),
            "tls.testClient=operator must be one of tls.clients",
        ),
        (Values(sets=("tls.clients[0].name=Not_A_Label",)), "/tls/clients/0/name"),
        (Values(sets=("tls.certManager.issuerRef.kind=Vault",)), "/tls/certManager/issuerRef/kind"),
        (
            Values(sets=("ledger.backup.restoreFrom=ledger-20261207T101700.000000Z.db",)),
            "exists only with ledger.backup.enabled=true",
        ),
        (
            Values(sets=("ledger.backup.enabled=true", "ledger.backup.restoreFrom=../../etc/passwd")),
            "/ledger/backup/restoreFrom",
        ),
        (Values(sets=("ledger.backup.keep=0",)), "/ledger/backup/keep"),
    ],
    ids=lambda v: ",".join(v.sets + v.set_strings + v.set_jsons) if isinstance(v, Values) else None,
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


def test_kubernetes_older_than_1_30_is_refused() -> None:
    result = helm_template(kube="1.29.9")
    assert result.returncode != 0
    assert "kubeVersion: >=1.30.0-0" in result.stderr


def test_a_strimzi_serving_only_v1beta2_is_named() -> None:
    old = helm_template(api_versions=("kafka.strimzi.io/v1beta2",))
    assert old.returncode != 0
    assert "Strimzi older than 0.49" in old.stderr
    assert helm_template(api_versions=("kafka.strimzi.io/v1beta2", "kafka.strimzi.io/v1")).returncode == 0


def test_production_without_a_registry_is_refused() -> None:
    result = helm_template(Values(files=(CHART / "values-production.yaml",)))
    assert result.returncode != 0
    assert "image.registry is required" in result.stderr


@pytest.mark.parametrize("missing", ["sum", "ledger"])
def test_production_without_image_digests_is_refused(missing: str) -> None:
    digests = {"sum": SUM_DIGEST, "ledger": LEDGER_DIGEST}
    sets = [f"image.registry={REGISTRY}"]
    sets += [
        f"{component}.image.digest={digest}" for component, digest in digests.items() if component != missing
    ]
    result = helm_template(Values(files=(CHART / "values-production.yaml",), sets=tuple(sets)))
    assert result.returncode != 0
    assert f"{missing}.image.digest is required here" in result.stderr


def test_production_runs_the_images_by_digest(renders: dict[str, Rendered]) -> None:
    rendered = renders["values-production"]
    images = {
        component_of(workload): only_container(workload)["image"]
        for workload in rendered.of_kind("Deployment") + rendered.of_kind("StatefulSet")
    }
    assert images == {
        "sum": f"{REGISTRY}/distributed-sum/sum-svc@{SUM_DIGEST}",
        "ledger": f"{REGISTRY}/distributed-sum/ledger-svc@{LEDGER_DIGEST}",
    }
