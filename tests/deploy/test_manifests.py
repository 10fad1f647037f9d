"""Every YAML file of the deployment parses, and the cluster-level manifests are valid and consistent."""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import pytest

from tests.deploy.layout import (
    CLUSTER_SCRIPTS,
    K8S,
    REMOTE_RELEASES,
    REPO,
    load_all_yaml,
    load_yaml,
    pinned,
    shell_assignment,
)

YAML_FILES = sorted([*K8S.rglob("*.yaml"), *K8S.rglob("*.yml"), REPO / "skaffold.yaml"])


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda path: str(path.relative_to(REPO)))
def test_yaml_parses_to_mappings(path: Path) -> None:
    documents = load_all_yaml(path)
    assert documents, f"{path} is empty"
    assert all(isinstance(document, dict) for document in documents)


def test_namespaces_are_valid_kubernetes_objects() -> None:
    version = kubernetes_validate.utils.latest_version()
    for namespace in load_all_yaml(K8S / "kind" / "namespaces.yaml"):
        kubernetes_validate.validate(namespace, version, strict=True)


def _namespace_labels() -> dict[str, dict[str, str]]:
    return {
        doc["metadata"]["name"]: doc["metadata"]["labels"]
        for doc in load_all_yaml(K8S / "kind" / "namespaces.yaml")
    }


def test_app_namespace_enforces_the_restricted_pod_security_standard() -> None:
    labels = _namespace_labels()[pinned()["APP_NAMESPACE"]]
    for mode in ("enforce", "audit", "warn"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"


def test_every_release_namespace_is_created_up_front() -> None:
    pins = pinned()
    wanted = {pins[f"{prefix}_NAMESPACE"] for prefix in (*REMOTE_RELEASES, "APP")}
    assert wanted <= set(_namespace_labels())


@pytest.mark.parametrize("path", ["online", "offline"])
def test_kind_configs_leave_the_name_to_the_script(path: str) -> None:
    """One config per path serves both clusters (distsum and distsum-e2e): kind.sh names them."""
    config = load_yaml(K8S / "kind" / f"{path}.yaml")
    assert config["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    assert config["kind"] == "Cluster"
    assert [node["role"] for node in config["nodes"]] == ["control-plane"]
    assert "name" not in config
    assert shell_assignment(CLUSTER_SCRIPTS / "up.sh", "cluster") == "distsum"
    assert shell_assignment(REPO / "scripts/e2e/run.sh", "cluster") == "distsum-e2e"
