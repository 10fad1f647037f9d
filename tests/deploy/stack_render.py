"""The whole stack as `make cluster-up` installs it, rendered offline.

scripts/cluster/up.sh runs against recording stand-ins (tests/deploy/stand_ins.py); every
`helm upgrade --install` it made is rendered again with the real, pinned helm and the same arguments, in
the same order. Each release is rendered with the API versions the releases before it serve (their CRDs),
as the cluster would answer `.Capabilities` at that point.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from tests.chart.chart_tools import Manifest, helm_binary, kube_version
from tests.deploy.layout import REPO, load_all_yaml
from tests.deploy.stand_ins import run_up

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "Pod")
# Flags of `helm upgrade --install` that only concern a live cluster, with whether each takes a value.
_CLUSTER_ONLY_FLAGS = {"--install": False, "--wait": False, "--timeout": True, "--kube-context": True}


class _Loader(yaml.CSafeLoader):
    """YAML 1.1's `=` (the "value" type) stays the string it is to Kubernetes: CRDs of the stack list it
    in enums, and PyYAML's safe loader refuses it."""


def _value_as_string(loader: yaml.CSafeLoader, node: yaml.Node) -> str:
    return str(loader.construct_scalar(node))  # type: ignore[arg-type]


_Loader.add_constructor("tag:yaml.org,2002:value", _value_as_string)


@dataclass
class Release:
    """One `helm upgrade --install` of up.sh and what `helm template` made of it."""

    name: str
    namespace: str
    argv: list[str]
    error: str
    objects: list[Manifest]

    def of_kind(self, kind: str) -> list[Manifest]:
        return [obj for obj in self.objects if obj["kind"] == kind]

    def named(self, kind: str, name: str) -> Manifest:
        (found,) = [obj for obj in self.of_kind(kind) if obj["metadata"]["name"] == name]
        return found

    def pod_specs(self) -> Iterator[tuple[str, Manifest]]:
        """(kind/name, pod spec) of every workload, helm test pods included."""
        for obj in self.objects:
            if obj["kind"] in WORKLOAD_KINDS:
                yield f"{obj['kind']}/{obj['metadata']['name']}", pod_spec(obj)

    def served_api_versions(self) -> list[str]:
        return [
            f"{crd['spec']['group']}/{version['name']}"
            for crd in self.of_kind("CustomResourceDefinition")
            for version in crd["spec"]["versions"]
            if version.get("served", True)
        ]


def pod_spec(workload: Manifest) -> Manifest:
    spec: Manifest = workload["spec"]
    if workload["kind"] == "Pod":
        return spec
    if workload["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    template_spec: Manifest = spec["template"]["spec"]
    return template_spec


def containers(spec: Manifest) -> list[Manifest]:
    found: list[Manifest] = spec.get("initContainers", []) + spec["containers"]
    return found


def _flag(argv: list[str], flag: str) -> str:
    return argv[argv.index(flag) + 1]


def template_argv(install: list[str], api_versions: list[str]) -> list[str]:
    """`helm template` with the chart, release, namespace and values of a recorded `helm upgrade
    --install`."""
    assert install[:3] == ["helm", "upgrade", "--install"], install
    argv = [str(helm_binary()), "template"]
    rest = iter(install[2:])
    for arg in rest:
        if arg in _CLUSTER_ONLY_FLAGS:
            if _CLUSTER_ONLY_FLAGS[arg]:
                next(rest)
            continue
        argv.append(arg)
    argv += ["--kube-version", kube_version(), "--include-crds"]
    for api in api_versions:
        argv += ["--api-versions", api]
    return argv


def render_stack(tmp_path: Path, *up_args: str) -> list[Release]:
    calls, _ = run_up(tmp_path, *up_args)
    releases: list[Release] = []
    for call in calls:
        install = call.split()
        if install[:3] != ["helm", "upgrade", "--install"]:
            continue
        served = [api for release in releases for api in release.served_api_versions()]
        argv = template_argv(install, served)
        done = subprocess.run(argv, capture_output=True, text=True, cwd=REPO, check=False)
        objects = (
            [doc for doc in yaml.load_all(done.stdout, Loader=_Loader) if doc] if done.returncode == 0 else []
        )
        releases.append(Release(install[3], _flag(install, "--namespace"), argv, done.stderr, objects))
    return releases


def namespace_labels() -> dict[str, dict[str, str]]:
    """The labels of each namespace scripts/cluster/prepare.sh applies, with the one Kubernetes adds."""
    labels = {}
    for namespace in load_all_yaml(REPO / "k8s" / "kind" / "namespaces.yaml"):
        name = namespace["metadata"]["name"]
        labels[name] = {**namespace["metadata"].get("labels", {}), "kubernetes.io/metadata.name": name}
    return labels


def selects(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """Whether a Kubernetes label selector selects these labels ({} selects everything)."""
    if selector is None:
        return False
    if any(labels.get(key) != value for key, value in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        held = {
            "In": key in labels and labels[key] in values,
            "NotIn": labels.get(key) not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[operator]
        if not held:
            return False
    return True


@dataclass(frozen=True)
class Backend:
    """Where a Service port leads: the workload, its container and the container's port number."""

    workload: Manifest
    container: Manifest
    port: int


def service_backend(releases: list[Release], url: str) -> Backend:
    """The container behind an in-cluster URL http(s)://<service>.<namespace>.svc.cluster.local:<port>."""
    parts = urlsplit(url)
    assert parts.hostname and parts.port, f"{url} names no host and port"
    service_name, namespace, svc, *_ = parts.hostname.split(".")
    assert svc == "svc", f"{url} is not a Service's cluster DNS name"
    release_objects = [
        obj for release in releases if release.namespace == namespace for obj in release.objects
    ]
    services = [
        obj for obj in release_objects if obj["kind"] == "Service" and obj["metadata"]["name"] == service_name
    ]
    assert services, f"no release renders the Service {service_name} in namespace {namespace} ({url})"
    (service,) = services
    ports = [port for port in service["spec"]["ports"] if port["port"] == parts.port]
    assert ports, f"the Service {service_name} has no port {parts.port} ({url})"
    target = ports[0].get("targetPort", parts.port)
    for workload in release_objects:
        if workload["kind"] not in WORKLOAD_KINDS or workload["kind"] == "Pod":
            continue
        spec = pod_spec(workload)
        template_labels = (
            workload["spec"]["template"]["metadata"].get("labels", {})
            if workload["kind"] != "CronJob"
            else {}
        )
        if not selects({"matchLabels": service["spec"].get("selector", {})}, template_labels):
            continue
        for container in spec["containers"]:
            for port in container.get("ports", []):
                if target in (port.get("name"), port["containerPort"]):
                    return Backend(workload, container, port["containerPort"])
    raise AssertionError(f"no container serves the Service {service_name}'s port {parts.port} ({url})")


def mounted_config(release: Release, spec: Manifest, container: Manifest) -> Iterator[tuple[str, Any]]:
    """(mount path/key, parsed YAML) of every ConfigMap or Secret key the container mounts that parses to
    a mapping: the configuration files the program reads."""
    volumes = {volume["name"]: volume for volume in spec.get("volumes", [])}
    for mount in container.get("volumeMounts", []):
        volume = volumes.get(mount["name"], {})
        for kind, source, field in (("ConfigMap", "configMap", "name"), ("Secret", "secret", "secretName")):
            if source not in volume:
                continue
            matching = [
                obj for obj in release.of_kind(kind) if obj["metadata"]["name"] == volume[source][field]
            ]
            for obj in matching:
                for key, text in (obj.get("data") or obj.get("stringData") or {}).items():
                    if kind == "Secret" and "data" in obj:
                        continue  # base64: no chart here keeps a program's configuration that way
                    try:
                        parsed = yaml.safe_load(text)
                    except yaml.YAMLError:
                        continue
                    if isinstance(parsed, dict):
                        yield f"{mount['mountPath']}/{key}", parsed
