"""The workloads: resources, probes, shutdown, spreading, autoscaling, the single ledger writer, and
environment variables the services really accept."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic_settings import BaseSettings

from distsum import settings
from distsum.settings import KafkaSettings
from ledger_svc.config import LedgerSettings
from sum_svc.config import SumSettings
from tests.chart.chart_tools import Rendered, Values, env_of, only_container, pod_spec
from tests.chart.conftest import BACKUP_FILE, SCENARIOS

FULLNAME = "distsum-distributed-sum"


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


def test_sum_probes_keep_pods_alive_while_kafka_is_down_and_need_no_tls(defaults: Rendered) -> None:
    """On the plaintext metrics port: /readyz follows Kafka, /healthz only the process."""
    sum_container = only_container(defaults.one("Deployment", "sum"))
    assert sum_container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    assert sum_container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert sum_container["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}


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
    assert ledger_ports["metrics"]["port"] == 9465


def test_a_headless_sum_service_resolves_to_the_sum_pods_only_when_asked(
    defaults: Rendered, renders: dict[str, Rendered]
) -> None:
    assert [
        s["metadata"]["name"] for s in defaults.of_kind("Service") if "headless" in s["metadata"]["name"]
    ] == []
    rendered = renders["sum-headless"]
    services = {s["metadata"]["name"]: s["spec"] for s in rendered.of_kind("Service")}
    headless, cluster_ip = services[f"{FULLNAME}-sum-headless"], services[f"{FULLNAME}-sum"]
    assert headless["clusterIP"] == "None"
    assert headless["selector"] == cluster_ip["selector"]
    assert headless["ports"] == [
        {"name": "grpc", "port": 50051, "targetPort": "grpc", "protocol": "TCP", "appProtocol": "grpc"}
    ]


def test_the_ledger_is_live_while_its_supervisor_runs(defaults: Rendered) -> None:
    """Liveness on the metrics port (the supervisor answers it), readiness on the REST port: stalled
    REST clients make the pod unready, never restart it with its consumer."""
    container = only_container(defaults.one("StatefulSet", "ledger"))
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    # The kubelet presents no client certificate: /readyz is the one path the ledger serves without one.
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http", "scheme": "HTTPS"}
    assert {"name": "metrics", "containerPort": 9465, "protocol": "TCP"} in container["ports"]


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
        if name.endswith("_FILE"):  # a mounted Secret's file (test_kafka_security checks the mounts)
            (tmp_path / name).write_text("placeholder\n")
            monkeypatch.setenv(name, str(tmp_path / name))
        else:
            monkeypatch.setenv(name, value if isinstance(value, str) else f"{component}-pod-0")
    for settings_type in settings_types:
        settings.load(settings_type)


@pytest.mark.parametrize("tag", ["20261204", "1234567"])
def test_an_all_digit_tag_renders_digit_for_digit(tag: str) -> None:
    """skaffold passes tags with --set, which reads digits as a number."""
    for values in (
        Values(sets=(f"image.tag={tag}",)),
        Values(sets=(f"sum.image.tag={tag}", f"ledger.image.tag={tag}")),
    ):
        rendered = Rendered.of(values)
        for kind, component in (("Deployment", "sum"), ("StatefulSet", "ledger")):
            container = only_container(rendered.one(kind, component))
            assert container["image"].endswith(f":{tag}"), container["image"]
    labels = Rendered.of(Values(sets=(f"image.tag={tag}",))).one("Deployment", "sum")["metadata"]["labels"]
    assert labels["app.kubernetes.io/version"] == tag


def test_backups_run_on_the_ledgers_node_against_its_own_volume(renders: dict[str, Rendered]) -> None:
    """The job mounts the ledger's ReadWriteOnce volume, so it must land on the ledger's node; the ledger
    reads the backups volume only, for its newest backup's age."""
    rendered = renders["backups"]
    ledger = rendered.one("StatefulSet", "ledger")
    cron = rendered.one("CronJob", "ledger-backup")
    job = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (claim,) = rendered.of_kind("PersistentVolumeClaim")
    assert claim["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"

    (affinity,) = job["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    ledger_labels = ledger["spec"]["template"]["metadata"]["labels"]
    assert affinity["labelSelector"]["matchLabels"].items() <= ledger_labels.items()
    assert affinity["topologyKey"] == "kubernetes.io/hostname"
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"

    (container,) = job["containers"]
    assert container["command"] == ["python", "-m", "ledger_svc.backup", "take"]
    claims = {
        v["name"]: v["persistentVolumeClaim"]["claimName"]
        for v in job["volumes"]
        if "persistentVolumeClaim" in v
    }
    data_template = ledger["spec"]["volumeClaimTemplates"][0]["metadata"]["name"]
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert claims[mounts["/data"]] == f"{data_template}-{ledger['metadata']['name']}-0"
    assert claims[mounts["/backups"]] == claim["metadata"]["name"]
    env = env_of(container)
    assert (env["LEDGER_DATA_DIR"], env["LEDGER_BACKUP_DIR"], env["LEDGER_BACKUP_KEEP"]) == (
        "/data",
        "/backups",
        "24",
    )

    ledger_container = only_container(ledger)
    assert env_of(ledger_container)["LEDGER_BACKUP_DIR"] == "/backups"
    (backups_mount,) = [m for m in ledger_container["volumeMounts"] if m["mountPath"] == "/backups"]
    assert backups_mount["readOnly"] is True
    for name in {**env, **env_of(ledger_container)}:
        if name.startswith("LEDGER_"):
            assert name.removeprefix("LEDGER_").lower() in LedgerSettings.model_fields, name


def test_a_ledger_told_to_restore_does_so_only_onto_a_volume_without_a_store(
    renders: dict[str, Rendered],
) -> None:
    ledger = renders["backups"].one("StatefulSet", "ledger")
    (restore,) = pod_spec(ledger)["initContainers"]
    assert restore["command"] == [
        "python", "-m", "ledger_svc.backup", "restore", "--if-missing", f"/backups/{BACKUP_FILE}",
    ]  # fmt: skip
    mounts = {m["mountPath"]: m for m in restore["volumeMounts"]}
    assert mounts["/data"]["name"] == "data"
    assert mounts["/backups"]["readOnly"] is True
    # It asks Kafka as the ledger, with the ledger's identity: the same Kafka variables.
    kafka = {k: v for k, v in env_of(only_container(ledger)).items() if k.startswith("KAFKA_")}
    assert kafka.items() <= env_of(restore).items()


def test_no_backups_unless_asked(defaults: Rendered) -> None:
    assert not defaults.of_kind("CronJob") and not defaults.of_kind("PersistentVolumeClaim")
    ledger = defaults.one("StatefulSet", "ledger")
    assert "initContainers" not in pod_spec(ledger)
    assert "LEDGER_BACKUP_DIR" not in env_of(only_container(ledger))
