"""The chart installs on a real cluster under the restricted Pod Security Standard and its pods serve."""

from __future__ import annotations

from typing import Any

import pytest

from distsum.clients.waiting import wait_until
from tests.e2e.conftest import Release, kubernetes
from tests.e2e.kube import Settings, port_forward, run, service_with_port, wait_pods_ready
from tests.e2e.ledger_audit import audit_applied
from tests.e2e.tls_clients import ClientCertificate
from tests.services import new_id

READY_SECONDS = 180


def test_the_api_server_refuses_a_pod_outside_the_restricted_standard(core: Any, namespace: str) -> None:
    pod = {
        "metadata": {"name": "privileged"},
        "spec": {"containers": [{"name": "c", "image": "scratch", "securityContext": {"privileged": True}}]},
    }
    with pytest.raises(kubernetes.client.ApiException) as refused:
        core.create_namespaced_pod(namespace, pod, dry_run="All")
    assert refused.value.status == 403
    assert "violates PodSecurity" in str(refused.value.body)


def test_every_pod_of_the_release_is_ready(core: Any, release: Release) -> None:
    selector = f"app.kubernetes.io/instance={release.name}"
    pods = wait_pods_ready(core, release.namespace, selector, 2, READY_SECONDS)
    for pod in pods:
        assert pod.spec.security_context.run_as_non_root, pod.metadata.name
        assert pod.spec.security_context.seccomp_profile.type == "RuntimeDefault", pod.metadata.name


def test_helm_test_passes(settings: Settings, release: Release) -> None:
    output = run(
        settings.helm, "test", release.name, "--kube-context", settings.context,
        "--namespace", release.namespace, "--timeout", "3m", timeout=240,
    )  # fmt: skip
    assert "Phase:          Succeeded" in output, output
    assert "Failed" not in output, output


def test_an_add_through_port_forward_reaches_the_ledger(
    core: Any, settings: Settings, release: Release, operator: ClientCertificate
) -> None:
    sum_svc, ledger_svc = (
        service_with_port(core, release.namespace, release.name, 50051),
        service_with_port(core, release.namespace, release.name, 8080),
    )
    with (
        port_forward(settings, release.namespace, sum_svc, 50051) as sum_target,
        port_forward(settings, release.namespace, ledger_svc, 8080) as ledger_target,
    ):
        wait_until(lambda: operator.health(sum_target) == "SERVING", 60, "sum health SERVING", 1.0)
        request_id = new_id()
        with operator.sum_client(sum_target) as client:
            reply = client.add(request_id, 40, 2, timeout=30)
            again = client.add(request_id, 40, 2, timeout=30)
        assert (reply.sum, again.sum, again.replayed) == (42, 42, True)

        audit_applied(operator.ledger(ledger_target), {request_id: 42}, 60)
