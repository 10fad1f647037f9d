"""skaffold as users run it (issue 10), against the e2e cluster: the pinned skaffold builds both images
itself (profile `offline`: the local base, no registry), loads them into kind and deploys only the app
(profile `external-kafka`) into a restricted namespace of its own, with a Kafka of its own.

scripts/e2e/run.sh hands over the pinned skaffold, kind, the Docker client directory with the buildx
plugin and the base image (DISTSUM_E2E_SKAFFOLD, _KIND, _DOCKER_CONFIG, _BASE_IMAGE)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from distsum.clients.waiting import wait_until
from tests.e2e import secured_kafka
from tests.e2e.conftest import cannot_test, restricted_namespace
from tests.e2e.kube import REPO, Settings, port_forward, service_with_port, wait_pods_ready
from tests.e2e.ledger_audit import audit_applied
from tests.e2e.tls_clients import ClientCertificate
from tests.services import new_id

RELEASE = "distributed-sum"  # the app release's name in skaffold.yaml
PROFILES = "offline,external-kafka"
# `skaffold run`: both builds (BuildKit's layer cache is warm after `make images`), `kind load`, and
# helm's --wait for the two pods.
RUN_SECONDS = 420
READY_SECONDS = 180
# `skaffold dev`, from saving a changed sum-service file to the new sum pod serving: the file watcher,
# both rebuilds (the Dockerfiles copy all of src/), `kind load` of both images and the rollout.
DEV_CHANGE_SECONDS = 300
STOP_SECONDS = 120
# The line the dev loop changes, and what it becomes (the new pod logs it once Kafka answers).
LOG_FILE = Path("src/sum_svc/health.py")
LOG_LINE = '"kafka reachable; serving"'
CHANGED_LINE = '"kafka reachable; serving (changed under skaffold dev)"'


@dataclass(frozen=True)
class Skaffold:
    binary: str
    env: dict[str, str]
    context: str
    namespace: str

    def argv(self, command: str, *args: str) -> list[str]:
        return [
            self.binary, command, "--profile", PROFILES, "--kube-context", self.context,
            "--namespace", self.namespace, "--interactive=false", "--update-check=false",
            # No artifact cache under ~/.skaffold; BuildKit's layer cache keeps rebuilds fast. No pruning:
            # skaffold's pruner removes every older image of each artifact's repository, `make images`'
            # :dev and :0.1.0 included; the tests remove the tags they made themselves.
            *(["--cache-artifacts=false", "--no-prune=true"] if command in ("run", "dev") else []), *args,
        ]  # fmt: skip

    def run(self, command: str, *args: str, cwd: Path = REPO, timeout: float = RUN_SECONDS) -> str:
        proc = subprocess.run(
            self.argv(command, *args), cwd=cwd, env=self.env, capture_output=True, text=True,
            timeout=timeout, check=False,
        )  # fmt: skip
        output = proc.stdout + proc.stderr
        assert proc.returncode == 0, f"skaffold {command} failed ({proc.returncode}):\n{output[-6000:]}"
        return output


@pytest.fixture(scope="module")
def skaffold(
    apps: Any, batch: Any, core: Any, settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Skaffold]:
    tools = {
        name: os.environ.get(f"DISTSUM_E2E_{name.upper()}", "")
        for name in ("skaffold", "kind", "docker_config", "base_image")
    }
    if not all(tools.values()):
        cannot_test("needs the pinned skaffold, kind and buildx plugin")
    # skaffold calls helm, kind (`kind load`) and kubectl by name.
    path = [str(Path(tool).parent) for tool in (settings.helm, tools["kind"], settings.kubectl)]
    config = tmp_path_factory.mktemp("skaffold") / "config"
    # Its global settings in a file of its own: no metrics, survey or update check, nothing in ~/.skaffold.
    config.write_text(
        "global:\n  collect-metrics: false\n  update-check: false\n  survey:\n    disable-prompt: true\n"
    )
    for namespace in restricted_namespace(core, f"distsum-e2e-sk-{uuid.uuid4().hex[:6]}"):
        env = {
            **os.environ,
            "PATH": os.pathsep.join([*path, os.environ["PATH"]]),
            "DOCKER_CONFIG": tools["docker_config"],
            "LOCAL_BASE_IMAGE": tools["base_image"],
            "SKAFFOLD_CONFIG": str(config),
            "DISTSUM_KAFKA_BOOTSTRAP": secured_kafka.start_kafka(apps, batch, core, namespace, settings),
        }
        yield Skaffold(tools["skaffold"], env, settings.context, namespace)


def app_pods(core: Any, namespace: str) -> list[Any]:
    return wait_pods_ready(core, namespace, f"app.kubernetes.io/instance={RELEASE}", 2, READY_SECONDS)


def images(pods: list[Any]) -> set[str]:
    return {container.image for pod in pods for container in pod.spec.containers}


def add_and_check_total(
    core: Any, settings: Settings, namespace: str, operands: list[int], files: Path
) -> None:
    """Add each operand (as a + 0) once, with the operator's certificate (saved in `files`); the ledger
    counts each once and its total grows by exactly their sum (the topic, and the ledger's volume,
    outlive a release in this namespace)."""
    operator = ClientCertificate.fetch(core, namespace, RELEASE, "operator", files)
    sum_svc = service_with_port(core, namespace, RELEASE, 50051)
    ledger_svc = service_with_port(core, namespace, RELEASE, 8080)
    with (
        port_forward(settings, namespace, sum_svc, 50051) as sum_target,
        port_forward(settings, namespace, ledger_svc, 8080) as ledger_target,
    ):
        wait_until(lambda: operator.health(sum_target) == "SERVING", 60, "sum health SERVING", 1.0)
        sent = {new_id(): a for a in operands}
        with operator.sum_client(sum_target) as client:
            for request_id, a in sent.items():
                assert client.add(request_id, a, 0, timeout=30).sum == a
        audit_applied(operator.ledger(ledger_target), sent, 60)


def remove_images(refs: set[str]) -> None:
    # skaffold tags every local build <image>:<image id>; leave no such tags behind in the engine.
    subprocess.run(["docker", "rmi", *refs], capture_output=True, check=False, timeout=60)


def test_skaffold_run_deploys_what_it_built_and_an_add_is_counted(
    core: Any, settings: Settings, skaffold: Skaffold, tmp_path: Path
) -> None:
    # An all-digit tag: the images are built and labelled with it, and the chart takes it.
    tag = str(int(time.time()))
    skaffold.run("run", "--tag", tag, "--status-check=true")
    pods = app_pods(core, skaffold.namespace)
    deployed = images(pods)
    try:
        # Locally built, unpushed images are deployed by image id (skaffold's unique tag), so a rebuild
        # with the same --tag still rolls out.
        for service in ("sum", "ledger"):
            built = subprocess.run(
                ["docker", "image", "inspect", "--format",
                 '{{.Id}} {{index .Config.Labels "org.opencontainers.image.revision"}}',
                 f"distributed-sum/{service}-svc:{tag}"],
                capture_output=True, text=True, check=True, timeout=30,
            ).stdout.split()  # fmt: skip
            assert built == [built[0], tag], f"{service}: the revision label is the skaffold tag"
            assert f"distributed-sum/{service}-svc:{built[0].removeprefix('sha256:')}" in deployed
        add_and_check_total(core, settings, skaffold.namespace, [40, 2], tmp_path / "tls")
        skaffold.run("delete")
        wait_until(
            lambda: not core.list_namespaced_pod(
                skaffold.namespace, label_selector=f"app.kubernetes.io/instance={RELEASE}"
            ).items,
            STOP_SECONDS, "skaffold delete to remove the app's pods", 1.0,
        )  # fmt: skip
    finally:
        remove_images(deployed | {f"distributed-sum/{s}-svc:{tag}" for s in ("sum", "ledger")})


def source_copy(target: Path) -> Path:
    """The tracked files of the work tree (with their uncommitted edits), for skaffold dev to watch."""
    listed = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", "-z"], capture_output=True, check=True, timeout=60
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = REPO / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def test_skaffold_dev_rolls_out_a_changed_sum_service_and_cleans_up(
    core: Any, settings: Settings, skaffold: Skaffold, tmp_path: Path
) -> None:
    work = source_copy(tmp_path / "work")
    original = (work / LOG_FILE).read_text()
    assert original.count(LOG_LINE) == 1, f"{LOG_FILE} no longer logs {LOG_LINE}: pick another line"
    log_path = tmp_path / "skaffold-dev.log"
    with log_path.open("w") as log:
        dev = subprocess.Popen(
            skaffold.argv("dev", "--tag", "dev-loop", "--port-forward=off"),
            cwd=work, env=skaffold.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    deployed: set[str] = set()

    def alive() -> None:
        assert dev.poll() is None, f"skaffold dev exited ({dev.returncode}):\n{log_path.read_text()[-6000:]}"

    try:

        def watching() -> bool:
            alive()
            return "Watching for changes" in log_path.read_text()

        wait_until(watching, RUN_SECONDS, "skaffold dev's first deployment", 1.0)
        first = app_pods(core, skaffold.namespace)
        deployed |= images(first)
        add_and_check_total(core, settings, skaffold.namespace, [5], tmp_path / "tls")
        old_sum = {pod.metadata.name for pod in first if "sum-svc" in pod.spec.containers[0].image}

        changed_at = time.monotonic()
        (work / LOG_FILE).write_text(original.replace(LOG_LINE, CHANGED_LINE))

        def new_sum_pod_logs_the_change() -> bool:
            alive()
            pods = core.list_namespaced_pod(
                skaffold.namespace, label_selector=f"app.kubernetes.io/instance={RELEASE}"
            ).items
            for pod in pods:
                if pod.metadata.name in old_sum or "sum-svc" not in pod.spec.containers[0].image:
                    continue
                if pod.metadata.deletion_timestamp is None and pod.status.phase == "Running":
                    logs = core.read_namespaced_pod_log(pod.metadata.name, skaffold.namespace)
                    if CHANGED_LINE.strip('"') in logs:
                        return True
            return False

        wait_until(new_sum_pod_logs_the_change, DEV_CHANGE_SECONDS, "the changed sum pod to serve", 2.0)
        now = app_pods(core, skaffold.namespace)
        deployed |= images(now)
        assert not old_sum & {pod.metadata.name for pod in now}, "the old sum pod is gone"
        # The ledger was rebuilt and restarted too (its image copies all of src/): its total carries on.
        add_and_check_total(core, settings, skaffold.namespace, [7], tmp_path / "tls")
        print(f"skaffold dev: the changed sum pod served {time.monotonic() - changed_at:.0f}s after the edit")
    finally:
        # Ctrl-C, as a user stops it: skaffold uninstalls what it deployed.
        if dev.poll() is None:
            os.killpg(dev.pid, signal.SIGINT)
        try:
            dev.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(dev.pid, signal.SIGKILL)
            dev.wait(timeout=30)
            raise
        finally:
            remove_images(deployed | {f"distributed-sum/{s}-svc:dev-loop" for s in ("sum", "ledger")})
    wait_until(
        lambda: not core.list_namespaced_pod(
            skaffold.namespace, label_selector=f"app.kubernetes.io/instance={RELEASE}"
        ).items,
        STOP_SECONDS, "skaffold dev's cleanup to remove the app's pods", 1.0,
    )  # fmt: skip
