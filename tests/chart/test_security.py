"""Every pod of every scenario meets the restricted Pod Security Standard; no service account token."""

from __future__ import annotations

import pytest

from tests.chart.chart_tools import Manifest, Rendered, component_of, pod_spec
from tests.chart.conftest import SCENARIOS


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
