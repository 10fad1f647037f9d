"""What the end-to-end tests do with the cluster: the tools `make e2e` hands over, manifests, waits.

Every wait polls with a deadline and names what it waited for when the deadline passes."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distsum.clients.waiting import wait_until
from tests.e2e.tls_clients import MOUNT, ClientCertificate

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "distributed-sum"

# The restricted Pod Security Standard, as every pod the tests add (Kafka, the topic Job) runs.
POD_SECURITY = {
    "runAsNonRoot": True,
    "runAsUser": 10001,
    "runAsGroup": 10001,
    "fsGroup": 10001,
    "seccompProfile": {"type": "RuntimeDefault"},
}
CONTAINER_SECURITY = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
}


@dataclass(frozen=True)
class Settings:
    """What scripts/e2e/run.sh exports; a developer can set the same against any cluster."""

    context: str
    kubectl: str
    helm: str
    image_tag: str
    kafka_image: str

    @classmethod
    def from_env(cls) -> Settings:
        helm = os.environ.get("DISTSUM_E2E_HELM") or shutil.which("helm") or ""
        return cls(
            context=os.environ.get("DISTSUM_E2E_CONTEXT", "kind-distsum-e2e"),
            kubectl=os.environ.get("DISTSUM_E2E_KUBECTL") or shutil.which("kubectl") or "",
            helm=helm,
            image_tag=os.environ.get("DISTSUM_E2E_IMAGE_TAG", "dev"),
            kafka_image=os.environ.get("DISTSUM_E2E_KAFKA_IMAGE", ""),
        )


def run(*args: str, timeout: float = 300) -> str:
    """Run a command; on failure raise with its output (no secrets pass through these commands)."""
    proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def pod_ready(pod: Any) -> bool:
    conditions = pod.status.conditions or []
    return any(c.type == "Ready" and c.status == "True" for c in conditions)


def wait_pods_ready(core: Any, namespace: str, selector: str, count: int, timeout: float) -> list[Any]:
    """Until exactly `count` pods match `selector` and all are Ready."""

    def ready() -> list[Any] | None:
        pods = core.list_namespaced_pod(namespace, label_selector=selector).items
        live = [p for p in pods if p.metadata.deletion_timestamp is None]
        return live if len(live) == count and all(pod_ready(p) for p in live) else None

    pods: list[Any] = wait_until(ready, timeout, f"{count} ready pod(s) {selector} in {namespace}", 1.0)
    return pods


def job_logs(core: Any, namespace: str, name: str) -> str:
    """The logs of every pod of a Job, each under its name and phase."""
    pods = core.list_namespaced_pod(namespace, label_selector=f"job-name={name}").items
    return "".join(
        f"--- {pod.metadata.name} ({pod.status.phase}):\n"
        + core.read_namespaced_pod_log(pod.metadata.name, namespace)
        for pod in pods
    )


def wait_job_complete(batch: Any, core: Any, namespace: str, name: str, timeout: float) -> None:
    """Until the Job succeeded; its first failure fails the test with every pod's log (python_job never
    restarts a container or retries a pod, so a failure is never hidden by a second try)."""

    def done() -> bool:
        status = batch.read_namespaced_job_status(name, namespace).status
        if status.failed:
            raise AssertionError(f"job {namespace}/{name} failed:\n{job_logs(core, namespace, name)}")
        return bool(status.succeeded)

    wait_until(done, timeout, f"job {namespace}/{name} to succeed", 1.0)


def service_with_port(core: Any, namespace: str, release: str, port: int) -> str:
    """svc/<name> of the release's Service that exposes `port` on a cluster IP (names follow the release).
    Headless Services are left out: the ledger's governing one has no ports, and the sum service's
    (sum.service.headless) exposes the gRPC port but balances nothing."""
    services = core.list_namespaced_service(
        namespace, label_selector=f"app.kubernetes.io/instance={release}"
    ).items
    names = [
        s.metadata.name
        for s in services
        if s.spec.cluster_ip != "None" and any(p.port == port for p in s.spec.ports or [])
    ]
    assert len(names) == 1, f"services exposing {port}: {names}"
    return f"svc/{names[0]}"


@contextmanager
def port_forward(settings: Settings, namespace: str, target: str, port: int) -> Iterator[str]:
    """`kubectl port-forward TARGET :PORT` on a free local port; yields 127.0.0.1:<local port>."""
    kubectl = [settings.kubectl, "--context", settings.context, "-n", namespace]
    proc = subprocess.Popen(
        [*kubectl, "port-forward", target, f":{port}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # "Forwarding from 127.0.0.1:40123 -> 50051"
        match = re.search(r"127\.0\.0\.1:(\d+)", line)
        assert match, f"kubectl port-forward {target} printed: {line!r}"
        yield f"127.0.0.1:{match.group(1)}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def kafka_manifests(
    namespace: str, image: str, tls_secret: str, super_users: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """One KRaft node from the local image (offline/kafka-image.sh), locked down with the broker key pair
    and CA of `tls_secret` (TLS only, client certificates, ACLs), and its Service `kafka`."""
    labels = {"app.kubernetes.io/name": "kafka", "app.kubernetes.io/part-of": "distsum-e2e"}
    container = {
        "name": "kafka",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "env": [
            {"name": "KAFKA_ADVERTISED_HOST", "value": f"kafka.{namespace}.svc.cluster.local"},
            {"name": "KAFKA_HEAP", "value": "384m"},
            {"name": "KAFKA_TLS_DIR", "value": "/etc/kafka/tls"},
            {"name": "KAFKA_SUPER_USERS", "value": super_users},
        ],
        "ports": [{"name": "kafka", "containerPort": 9092}],
        "readinessProbe": {"tcpSocket": {"port": 9092}, "periodSeconds": 2},
        "securityContext": CONTAINER_SECURITY,
        "resources": {"requests": {"cpu": "100m", "memory": "512Mi"}, "limits": {"memory": "768Mi"}},
        "volumeMounts": [
            {"name": "data", "mountPath": "/var/lib/kafka"},
            {"name": "tmp", "mountPath": "/tmp"},
            {"name": "tls", "mountPath": "/etc/kafka/tls", "readOnly": True},
        ],
    }
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "kafka", "labels": labels},
        "spec": {
            "replicas": 1,
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "securityContext": POD_SECURITY,
                    "automountServiceAccountToken": False,
                    "containers": [container],
                    "volumes": [
                        {"name": "data", "emptyDir": {}},
                        {"name": "tmp", "emptyDir": {}},
                        {"name": "tls", "secret": {"secretName": tls_secret, "defaultMode": 0o440}},
                    ],
                },
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "kafka", "labels": labels},
        "spec": {"selector": labels, "ports": [{"name": "kafka", "port": 9092, "targetPort": 9092}]},
    }
    return deployment, service


TOPICS_SCRIPT = """
import json, sys, time
from confluent_kafka.admin import AdminClient, NewTopic, AclBinding, AclOperation, AclPermissionType
from confluent_kafka.admin import ResourcePatternType, ResourceType
admin = AdminClient({"bootstrap.servers": sys.argv[1], **json.loads(sys.argv[2])})
wanted = {"sums": 6, "sums.dlq": 1}
deadline = time.monotonic() + 150  # a broker that just became Ready may still be electing its controller
while wanted:
    asked = admin.create_topics([NewTopic(n, p, 1) for n, p in wanted.items()], request_timeout=30)
    for name, future in asked.items():
        try:
            future.result(timeout=60)
        except Exception as error:
            if "TOPIC_ALREADY_EXISTS" not in str(error):
                print("topic", name, "not created yet:", error, file=sys.stderr)
                if time.monotonic() > deadline:
                    raise
                continue
        print("topic", name, "ready")
        del wanted[name]
    if wanted:
        time.sleep(2)
bindings = [
    AclBinding(ResourceType[g["resource"]], g["name"], ResourcePatternType[g["pattern"]],
               "User:" + g["principal"], "*", AclOperation[g["operation"]], AclPermissionType.ALLOW)
    for g in json.loads(sys.argv[3])
]
for future in admin.create_acls(bindings, request_timeout=30).values():
    future.result(60)
print(len(bindings), "ACLs granted")
"""


# Where NetworkPolicies are enforced, a new pod's address is admitted a moment after it starts (about a
# second here), as with any enforcer that follows pods. A Job that must reach services first waits until
# each accepts a connection: its script then sees the services, not the start-up race.
ADMISSION_SECONDS = 30
ADMISSION_PREAMBLE = """
import socket as _socket, time as _time
_deadline = _time.monotonic() + {seconds}
for _host, _port in {targets!r}:
    while True:
        try:
            _socket.create_connection((_host, _port), timeout=3).close()
            break
        except OSError:
            if _time.monotonic() > _deadline:
                raise
            _time.sleep(0.5)
"""


def python_job(
    name: str,
    image: str,
    script: str,
    *args: str,
    labels: dict[str, str] | None = None,
    client: ClientCertificate | None = None,
    secrets: dict[str, str] | None = None,
    reach: list[str] | None = None,
) -> dict[str, Any]:
    """A Job running `python -c script args...` from one of our images, as the restricted standard wants,
    its pod labelled with `labels` too (to be the peer a NetworkPolicy admits). As a `client`, its pod
    carries that identity's label and its certificate files at tls_clients.MOUNT. It runs once: a failed
    container is neither restarted nor retried in a new pod, so whatever made it fail is what the test
    sees (a script that must wait for something waits itself). `labels` given override the identity's
    (a pod the policies admit as one client, presenting another's certificate). `secrets` maps Secret
    names to the directories they are mounted at. `reach` lists host:port the script will connect to:
    it starts once each accepts a connection (ADMISSION_PREAMBLE)."""
    if client is not None:
        labels = {**client.job_labels(), **(labels or {})}
    if reach:
        targets = [(host, int(port)) for host, port in (target.rsplit(":", 1) for target in reach)]
        script = ADMISSION_PREAMBLE.format(seconds=ADMISSION_SECONDS, targets=targets) + script
    mounts = [{"name": "tls", "mountPath": MOUNT, "readOnly": True}] if client else []
    volumes = [client.job_volume()] if client else []
    for index, (secret, directory) in enumerate((secrets or {}).items()):
        mounts.append({"name": f"secret-{index}", "mountPath": directory, "readOnly": True})
        volumes.append({"name": f"secret-{index}", "secret": {"secretName": secret, "defaultMode": 0o440}})
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {
                    "labels": {"app.kubernetes.io/part-of": "distsum-e2e", "job-name": name, **(labels or {})}
                },
                "spec": {
                    "restartPolicy": "Never",
                    "securityContext": POD_SECURITY,
                    "automountServiceAccountToken": False,
                    "containers": [
                        {
                            "name": "probe",
                            "image": image,
                            "imagePullPolicy": "IfNotPresent",
                            "command": ["python", "-c", script, *args],
                            "securityContext": CONTAINER_SECURITY,
                            "volumeMounts": mounts,
                        }
                    ],
                    "volumes": volumes,
                },
            },
        },
    }


def topics_job(
    bootstrap: str,
    image: str,
    security: dict[str, Any],
    grants: list[dict[str, str]],
    secrets: dict[str, str],
) -> dict[str, Any]:
    """A Job that creates the chart's two topics and grants the ACLs, run from the sum image (it has
    confluent_kafka) with the librdkafka `security` settings of the `secrets` it mounts."""
    arguments = (bootstrap, json.dumps(security), json.dumps(grants))
    return python_job("kafka-topics", image, TOPICS_SCRIPT, *arguments, secrets=secrets)


def run_in_cluster(batch: Any, core: Any, namespace: str, job: dict[str, Any], timeout: float) -> str:
    """Run a Job to completion and return the log of its successful pod."""
    batch.create_namespaced_job(namespace, job)
    return finished_job_log(batch, core, namespace, job["metadata"]["name"], timeout)


def finished_job_log(batch: Any, core: Any, namespace: str, name: str, timeout: float) -> str:
    """The log of a Job's successful pod, once it has succeeded."""
    wait_job_complete(batch, core, namespace, name, timeout)
    pods = core.list_namespaced_pod(namespace, label_selector=f"job-name={name}").items
    done = [p for p in pods if p.status.phase == "Succeeded"]
    assert done, f"no succeeded pod of job {namespace}/{name}"
    log: str = core.read_namespaced_pod_log(done[0].metadata.name, namespace)
    return log


def prometheus_api(base: str, path: str, **query: str) -> Any:
    """The data of a Prometheus HTTP API call (base: http://host:port)."""
    url = f"{base}/api/v1/{path}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
    with urllib.request.urlopen(url, timeout=10) as reply:
        body = json.loads(reply.read())
    assert body["status"] == "success", body
    return body["data"]
