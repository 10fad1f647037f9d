"""Builds the offline JSON schemas that kubeconform checks the Helm chart against.

Two sources, both installed through package registries and pinned by scripts/k8s-schemas.sh:

- Kubernetes' own objects: the strict schemas shipped in the PyPI package kubernetes-validate. Their
  ``$ref``s point at ``/api/_definitions.json`` under a ``https://kubernetes.io`` ``$id``, which kubeconform
  would try to download; each copy written here carries the definitions it needs in its own ``$defs``.
- Custom resources: CRD manifests (e.g. the monitoring.coreos.com CRDs in the prometheus-operator Go
  module). Each served version's ``openAPIV3Schema`` becomes a strict JSON schema: objects reject
  unknown properties unless the CRD preserves unknown fields, as the API server would prune them.

Layout (tests/chart/chart_tools.py turns it into kubeconform ``-schema-location`` templates)::

    <out>/kubernetes/v1.37.0-standalone-strict/deployment-apps-v1.json
    <out>/crds/monitoring.coreos.com/servicemonitor_v1.json
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.resources
import json
import shutil
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml

KUBERNETES_DIR = "kubernetes"
CRD_DIR = "crds"


def _local_refs(node: Any, found: set[str]) -> Any:
    """The node with ``$id`` dropped and every definitions ``$ref`` made local; collects their names."""
    if isinstance(node, dict):
        converted = {}
        for key, value in node.items():
            if key == "$id":
                continue
            if key == "$ref" and isinstance(value, str) and "#/$defs/" in value:
                name = value.split("#/$defs/", 1)[1]
                found.add(name)
                converted[key] = f"#/$defs/{name}"
            else:
                converted[key] = _local_refs(value, found)
        return converted
    if isinstance(node, list):
        return [_local_refs(item, found) for item in node]
    return node


def standalone(schema: dict[str, Any], definitions: dict[str, Any]) -> dict[str, Any]:
    """The schema with just the definitions it needs under its own ``$defs``.

    Each file then compiles on its own, which is much faster for kubeconform than loading the whole
    _definitions.json once per kind, and needs no network.
    """
    needed: set[str] = set()
    result: dict[str, Any] = _local_refs(schema, needed)
    local: dict[str, Any] = {}
    pending = set(needed)
    while pending:
        name = pending.pop()
        found: set[str] = set()
        local[name] = _local_refs(definitions[name], found)
        pending |= found - local.keys()
    result["$defs"] = local
    return result


def copy_kubernetes_schemas(kube_version: str, out: Path) -> int:
    package_dir = Path(str(importlib.resources.files("kubernetes_validate"))) / "kubernetes-json-schema"
    source = package_dir / f"v{kube_version}-local-strict"
    if not source.is_dir():
        raise SystemExit(f"kubernetes-validate has no schemas for Kubernetes {kube_version} ({source})")
    definitions = json.loads((source / "_definitions.json").read_text())["$defs"]
    target = out / KUBERNETES_DIR / f"v{kube_version}-standalone-strict"
    target.mkdir(parents=True)
    count = 0
    for path in sorted(source.glob("*.json")):
        if path.name.startswith("_") or path.name == "all.json":
            continue
        (target / path.name).write_text(json.dumps(standalone(json.loads(path.read_text()), definitions)))
        count += 1
    return count


def strict_schema(node: Any) -> Any:
    """An OpenAPI v3 (structural CRD) schema as a strict JSON schema."""
    if isinstance(node, list):
        return [strict_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: strict_schema(value) for key, value in node.items()}
    if converted.pop("x-kubernetes-int-or-string", False):
        converted.pop("type", None)
        converted.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    if converted.pop("nullable", False) and isinstance(converted.get("type"), str):
        converted["type"] = [converted["type"], "null"]
    preserves = converted.pop("x-kubernetes-preserve-unknown-fields", False)
    if "properties" in converted and "additionalProperties" not in converted and not preserves:
        converted["additionalProperties"] = False
    return {key: value for key, value in converted.items() if not key.startswith("x-kubernetes-")}


def crd_schemas(crd: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(relative path, JSON schema) for every served version of a CustomResourceDefinition."""
    spec = crd["spec"]
    group, kind = spec["group"], spec["names"]["kind"]
    for version in spec["versions"]:
        if not version.get("served", True):
            continue
        schema = strict_schema(version["schema"]["openAPIV3Schema"])
        properties = schema.setdefault("properties", {})
        properties["apiVersion"] = {"type": "string", "enum": [f"{group}/{version['name']}"]}
        properties["kind"] = {"type": "string", "enum": [kind]}
        yield f"{group}/{kind.lower()}_{version['name']}.json", schema


def write_crd_documents(documents: Iterable[Any], out: Path) -> int:
    """Write the schemas of every CustomResourceDefinition among the documents; how many were written."""
    count = 0
    for document in documents:
        if not document or document.get("kind") != "CustomResourceDefinition":
            continue
        for relative, schema in crd_schemas(document):
            target = out / CRD_DIR / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(json.dumps(schema))
            count += 1
    return count


def write_crd_schemas(crd_files: list[Path], out: Path) -> int:
    return sum(write_crd_documents(yaml.safe_load_all(crd_file.read_text()), out) for crd_file in crd_files)


def build(kube_version: str, kubernetes_validate_version: str, crd_files: list[Path], out: Path) -> None:
    installed = importlib.metadata.version("kubernetes-validate")
    if installed != kubernetes_validate_version:
        raise SystemExit(
            f"kubernetes-validate {installed} is installed, {kubernetes_validate_version} is pinned: "
            "run `make venv` (requirements/dev.lock) or update the pin in scripts/k8s-schemas.sh"
        )
    staging = out.with_name(out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    kubernetes = copy_kubernetes_schemas(kube_version, staging)
    crds = write_crd_schemas(crd_files, staging)
    shutil.rmtree(out, ignore_errors=True)
    staging.rename(out)
    print(f"k8s_schemas: {kubernetes} Kubernetes schemas and {crds} CRD schemas in {out}", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kube-version", required=True, help="e.g. 1.37.0")
    parser.add_argument("--kubernetes-validate-version", required=True, help="the pinned package version")
    parser.add_argument("--out", type=Path, required=True, help="directory to (re)create")
    parser.add_argument("crds", type=Path, nargs="*", help="CustomResourceDefinition YAML files")
    args = parser.parse_args()
    build(args.kube_version, args.kubernetes_validate_version, args.crds, args.out)


if __name__ == "__main__":
    main()
