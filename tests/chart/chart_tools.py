"""Helpers for the Helm chart tests: the pinned tools, rendering, and reading the rendered objects.

Every tool is installed by the project's own scripts (scripts/go-tool.sh, scripts/k8s-schemas.sh,
scripts/strimzi-check.sh) and cached under the distsum cache directory, so the tests run offline once
the cache is warm.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "distributed-sum"
OVERLAYS = sorted(CHART.glob("values-*.yaml"))
RELEASE = "distsum"
NAMESPACE = "distsum"

Manifest = dict[str, Any]


def _pinned(*argv: str) -> str:
    """stdout of a script that installs a pinned tool; skips where Go is missing (exit status 77), fails
    where the build fails."""
    done = subprocess.run(argv, capture_output=True, text=True, check=False, cwd=REPO)
    if done.returncode == 77:
        pytest.skip(f"Go is not installed and nothing is cached for {' '.join(argv)}: {done.stderr.strip()}")
    assert done.returncode == 0, f"{' '.join(argv)} failed:\n{done.stderr}"
    return done.stdout.strip()


@cache
def helm_binary() -> Path:
    """The pinned helm (scripts/go-tool.sh), built on first use."""
    return Path(_pinned("scripts/go-tool.sh", "helm"))


@cache
def kube_score_binary() -> Path:
    """The pinned kube-score (scripts/go-tool.sh), built on first use."""
    return Path(_pinned("scripts/go-tool.sh", "kube-score"))


@cache
def kube_version() -> str:
    """The Kubernetes version the chart is rendered and validated for (that of kind's node image)."""
    return _pinned("scripts/k8s-schemas.sh", "--kube-version")


@dataclass(frozen=True)
class KubeconformTools:
    kubeconform: Path
    schemas: Path

    def schema_locations(self) -> list[str]:
        """kubeconform -schema-location templates of the layout scripts/k8s_schemas.py writes."""
        kubernetes = "kubernetes/{{ .NormalizedKubernetesVersion }}-standalone{{ .StrictSuffix }}"
        crds = "crds/{{ .Group }}"
        return [
            f"{self.schemas}/{kubernetes}/{{{{ .ResourceKind }}}}{{{{ .KindSuffix }}}}.json",
            f"{self.schemas}/{crds}/{{{{ .ResourceKind }}}}_{{{{ .ResourceAPIVersion }}}}.json",
        ]


@cache
def kubeconform_tools() -> KubeconformTools:
    """The pinned kubeconform binary and the schema directory, built on first use."""
    return KubeconformTools(
        kubeconform=Path(_pinned("scripts/go-tool.sh", "kubeconform")),
        schemas=Path(_pinned("scripts/k8s-schemas.sh")),
    )


@dataclass(frozen=True)
class Values:
    """A set of values for one render: overlay files and --set / --set-string / --set-json assignments."""

    files: tuple[Path, ...] = ()
    sets: tuple[str, ...] = ()
    set_strings: tuple[str, ...] = ()
    set_jsons: tuple[str, ...] = ()

    def helm_args(self) -> list[str]:
        args: list[str] = []
        for path in self.files:
            args += ["--values", str(path)]
        for assignment in self.sets:
            args += ["--set", assignment]
        for assignment in self.set_strings:
            args += ["--set-string", assignment]
        for assignment in self.set_jsons:
            args += ["--set-json", assignment]
        return args


def helm(*args: str, values: Values = Values()) -> subprocess.CompletedProcess[str]:
    argv = [str(helm_binary()), *args, *values.helm_args()]
    return subprocess.run(argv, check=False, capture_output=True, text=True, cwd=REPO)


def helm_template(
    values: Values = Values(),
    namespace: str = NAMESPACE,
    kube: str | None = None,
    api_versions: tuple[str, ...] = (),
) -> subprocess.CompletedProcess[str]:
    """`helm template` for the pinned Kubernetes version (or kube), with the cluster's extra APIs."""
    apis = [arg for api in api_versions for arg in ("--api-versions", api)]
    return helm(
        "template", RELEASE, str(CHART), "--namespace", namespace,
        "--kube-version", kube or kube_version(), *apis, values=values,
    )  # fmt: skip


def helm_lint(values: Values = Values()) -> subprocess.CompletedProcess[str]:
    return helm("lint", "--strict", str(CHART), "--kube-version", kube_version(), values=values)


def render_notes(values: Values, workdir: Path) -> str:
    """NOTES.txt as `helm install` would print it, rendered offline.

    `helm install --dry-run` needs a cluster, so a copy of the chart turns NOTES.txt into a named
    template and renders it into a ConfigMap.
    """
    chart = workdir / CHART.name
    shutil.copytree(CHART, chart)
    notes = (chart / "templates" / "NOTES.txt").read_text()
    (chart / "templates" / "NOTES.txt").unlink()
    (chart / "templates" / "_notes.tpl").write_text('{{- define "test.notes" }}' + notes + "{{- end }}")
    (chart / "templates" / "notes.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: notes}\n"
        'data: {notes: {{ include "test.notes" . | quote }}}\n'
    )
    result = helm(
        "template", RELEASE, str(chart), "--namespace", NAMESPACE, "--show-only", "templates/notes.yaml",
        "--kube-version", kube_version(), values=values,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    notes_text: str = yaml.safe_load(result.stdout)["data"]["notes"]
    return notes_text


@dataclass
class Rendered:
    """The objects `helm template` rendered for one set of values (helm test pods included)."""

    text: str
    objects: list[Manifest] = field(default_factory=list)

    @classmethod
    def of(cls, values: Values = Values(), namespace: str = NAMESPACE) -> Rendered:
        result = helm_template(values, namespace)
        assert result.returncode == 0, f"helm template failed:\n{result.stderr}"
        objects = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
        return cls(text=result.stdout, objects=objects)

    def of_kind(self, kind: str) -> list[Manifest]:
        return [obj for obj in self.objects if obj["kind"] == kind]

    def one(self, kind: str, component: str) -> Manifest:
        matches = [obj for obj in self.of_kind(kind) if component_of(obj) == component]
        assert len(matches) == 1, f"expected one {kind} of component {component}, found {len(matches)}"
        return matches[0]

    def kinds(self) -> set[str]:
        return {obj["kind"] for obj in self.objects}

    def pod_specs(self) -> Iterator[tuple[str, Manifest]]:
        """(object name, pod spec) of every workload, job and helm test pod."""
        for obj in self.objects:
            if obj["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
                yield obj["metadata"]["name"], obj["spec"]["template"]["spec"]
            elif obj["kind"] == "CronJob":
                yield obj["metadata"]["name"], obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
            elif obj["kind"] == "Pod":
                yield obj["metadata"]["name"], obj["spec"]


def component_of(obj: Manifest) -> str | None:
    labels: dict[str, str] = obj["metadata"].get("labels", {})
    return labels.get("app.kubernetes.io/component")


def pod_spec(workload: Manifest) -> Manifest:
    spec: Manifest = workload["spec"]["template"]["spec"]
    return spec


def only_container(workload: Manifest) -> Manifest:
    containers: list[Manifest] = pod_spec(workload)["containers"]
    assert len(containers) == 1
    return containers[0]


def env_of(container: Manifest) -> dict[str, Any]:
    """Environment variables by name: the plain value, or the valueFrom mapping."""
    return {var["name"]: var.get("value", var.get("valueFrom")) for var in container.get("env", [])}


@dataclass(frozen=True)
class Verdict:
    kind: str
    name: str
    status: str
    message: str


def kubeconform(files: Sequence[Path], tools: KubeconformTools | None = None) -> dict[str, list[Verdict]]:
    """Validate YAML files strictly against the pinned schemas (or those of `tools`); verdicts per file.

    No -ignore-missing-schemas: an object without a schema is an error, never silently skipped.
    """
    t = tools or kubeconform_tools()
    argv = [
        str(t.kubeconform),
        "-strict",
        "-verbose",
        "-output",
        "json",
        "-kubernetes-version",
        kube_version(),
    ]
    for location in t.schema_locations():
        argv += ["-schema-location", location]
    result = subprocess.run([*argv, *map(str, files)], check=False, capture_output=True, text=True, cwd=REPO)
    verdicts: dict[str, list[Verdict]] = {str(path): [] for path in files}
    for resource in json.loads(result.stdout)["resources"]:
        verdict = Verdict(resource["kind"], resource["name"], resource["status"], resource["msg"])
        verdicts[resource["filename"]].append(verdict)
    return verdicts


def strimzi_check(files: Sequence[Path]) -> subprocess.CompletedProcess[str]:
    """Check Strimzi resources against the io.strimzi:api model (skips without Java and Maven)."""
    missing = [tool for tool in ("java", "javac", "mvn") if shutil.which(tool) is None]
    if missing:
        pytest.skip(
            f"{', '.join(missing)} not installed: cannot check Strimzi resources against io.strimzi:api"
        )
    return subprocess.run(
        ["scripts/strimzi-check.sh", *map(str, files)], check=False, capture_output=True, text=True, cwd=REPO
    )
