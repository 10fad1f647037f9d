"""Read the deployment files of the repository: k8s/, skaffold.yaml and the app chart's values."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "k8s"
OBSERVABILITY = K8S / "observability"
CLUSTER_SCRIPTS = REPO / "scripts" / "cluster"
APP_CHART = REPO / "charts" / "distributed-sum"

PINS = REPO / "pins.env"

# Prefixes of the releases pinned in pins.env, in installation order.
REMOTE_RELEASES = ("STRIMZI", "KPS", "LOKI", "TEMPO", "ALLOY")


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def load_all_yaml(path: Path) -> list[Any]:
    return list(yaml.safe_load_all(path.read_text()))


def pinned() -> dict[str, str]:
    """The KEY=value lines of pins.env (the file every script sources)."""
    pins: dict[str, str] = {}
    for line in PINS.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, sep, value = line.partition("=")
            assert sep and re.fullmatch(r"[A-Z][A-Z0-9_]*", key), f"not a KEY=value line: {line!r}"
            pins[key] = value
    return pins


def values(name: str) -> dict[str, Any]:
    """The values file of one release under k8s/observability/."""
    loaded = load_yaml(OBSERVABILITY / f"{name}.yaml")
    assert isinstance(loaded, dict)
    return loaded


def skaffold() -> dict[str, Any]:
    loaded = load_yaml(REPO / "skaffold.yaml")
    assert isinstance(loaded, dict)
    return loaded


def service_url(service: str, namespace: str, port: int | str) -> str:
    return f"http://{service}.{namespace}.svc.cluster.local:{port}"


def shell_assignment(script: Path, name: str) -> str:
    """The value of a plain `name=value` assignment in a shell script."""
    match = re.search(rf"^{name}=(\S+)$", script.read_text(), re.MULTILINE)
    assert match, f"{script.name} assigns no {name}"
    return match.group(1)


def skaffold_sanitized(image: str) -> str:
    """Skaffold's SanitizeHelmTemplateValue: ".", "-", "/" and ":" become "_" in template variable names."""
    return re.sub(r"[.\-/:]", "_", image)


def skaffold_app_values(profile: str | None, tag: str) -> dict[str, str]:
    """The --set values skaffold passes to the app release, with the image templates resolved as skaffold
    resolves them for images built as <image>:<tag>."""
    config = skaffold()
    deploy = config["deploy"]
    if profile is not None:
        (chosen,) = [entry for entry in config["profiles"] if entry["name"] == profile]
        deploy = chosen["deploy"]
    app = deploy["helm"]["releases"][-1]
    variables = {}
    for artifact in config["build"]["artifacts"]:
        name = skaffold_sanitized(artifact["image"])
        variables[f"{{{{.IMAGE_REPO_{name}}}}}"] = artifact["image"]
        variables[f"{{{{.IMAGE_TAG_{name}}}}}"] = tag
    resolved = {key: variables[template] for key, template in app["setValueTemplates"].items()}
    resolved.update({key: str(value).lower() for key, value in app.get("setValues", {}).items()})
    return resolved
