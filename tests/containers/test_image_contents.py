"""What the images hold: their own service, the shared package and their runtime only, configured to run
as uid 10001."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from tests.containers.conftest import Containers
from tests.containers.docker_cli import APP_UID, LEDGER_IMAGE, SUM_IMAGE, docker

REPO_ROOT = Path(__file__).resolve().parents[2]

# Runs inside the image: which modules import, which programs are on PATH, which top-level packages the
# project's distribution installed, and whether any harness file lies under the venv.
PROBE = """
import importlib.metadata, importlib.util, json, os, shutil, sys
names = [name for _, dirs, files in os.walk(sys.prefix) for name in dirs + files]
files = importlib.metadata.files("distributed-sum") or []
modules = ("sum_svc", "ledger_svc", "distsum", "localstack", "bench", "soak", "pip", "setuptools")
print(json.dumps({
    "modules": {m: importlib.util.find_spec(m) is not None for m in modules},
    "packages": sorted({f.parts[0] for f in files if f.suffix == ".py" and len(f.parts) > 1}),
    "programs": {p: shutil.which(p) for p in ("python", "distsum", "pip", "pip3", "gcc", "cc", "make")},
    "harness_files": [n for n in names if n in ("localstack", "soak", "harness")],
}))
"""

IMAGES = {
    SUM_IMAGE: (["python", "-m", "sum_svc"], {"50051/tcp", "9464/tcp"}, "sum_svc"),
    LEDGER_IMAGE: (["python", "-m", "ledger_svc"], {"8080/tcp"}, "ledger_svc"),
}


@pytest.mark.parametrize("image", list(IMAGES))
def test_image_holds_its_own_service_and_the_shared_package_but_no_harness_installer_or_compiler(
    image: str, containers: Containers
) -> None:
    own = IMAGES[image][2]
    found = json.loads(containers.run(image, "python", "-c", PROBE))
    assert found["packages"] == sorted(["distsum", own])
    assert found["modules"] == {
        "sum_svc": own == "sum_svc",
        "ledger_svc": own == "ledger_svc",
        "distsum": True,
        "localstack": False,
        "bench": False,
        "soak": False,
        "pip": False,
        "setuptools": False,
    }
    assert found["programs"] == {
        "python": "/opt/venv/bin/python",
        "distsum": "/opt/venv/bin/distsum",
        "pip": None,
        "pip3": None,
        "gcc": None,
        "cc": None,
        "make": None,
    }
    assert found["harness_files"] == []


@pytest.mark.parametrize("image", list(IMAGES))
def test_image_config_runs_the_service_as_uid_10001(image: str) -> None:
    entrypoint, ports, _ = IMAGES[image]
    config = json.loads(docker("image", "inspect", image))[0]["Config"]
    assert config["User"] == f"{APP_UID}:{APP_UID}"
    assert config["Entrypoint"] == entrypoint
    assert set(config["ExposedPorts"]) == ports
    assert config["Env"].count("PYTHONDONTWRITEBYTECODE=1") == 1
    with (REPO_ROOT / "pyproject.toml").open("rb") as pyproject:
        version = tomllib.load(pyproject)["project"]["version"]
    assert config["Labels"]["org.opencontainers.image.version"] == version


@pytest.mark.parametrize("image", list(IMAGES))
def test_make_images_writes_an_sbom_of_every_package_in_the_image(image: str) -> None:
    """build/sbom/<image>-<version>.cdx.json (syft, CycloneDX): this build of the image (its revision),
    every Python package of requirements/runtime.lock at its locked version, and the Debian packages."""
    labels = json.loads(docker("image", "inspect", image))[0]["Config"]["Labels"]
    repository, version = image.rsplit(":", 1)[0], labels["org.opencontainers.image.version"]
    path = REPO_ROOT / "build" / "sbom" / f"{repository.split('/')[-1]}-{version}.cdx.json"
    sbom = json.loads(path.read_text())

    assert sbom["bomFormat"] == "CycloneDX"
    assert sbom["metadata"]["component"] == sbom["metadata"]["component"] | {
        "type": "container",
        "name": repository,
        "version": version,
    }
    properties = {p["name"]: p["value"] for p in sbom["metadata"]["properties"]}
    revision = properties["syft:image:labels:org.opencontainers.image.revision"]
    assert revision == labels["org.opencontainers.image.revision"], f"{path} is of another build"
    purls = {c.get("purl", "").split("?")[0] for c in sbom["components"]}
    locked = {
        f"pkg:pypi/{name.lower().replace('_', '-')}@{pinned}" for name, pinned in runtime_pins().items()
    }
    assert not locked - purls, f"locked packages missing from {path}: {sorted(locked - purls)}"
    assert any(purl.startswith("pkg:deb/debian/") for purl in purls), f"no Debian package in {path}"


def runtime_pins() -> dict[str, str]:
    lines = (REPO_ROOT / "requirements" / "runtime.lock").read_text().splitlines()
    pairs = [line.removesuffix("\\").strip().split("==") for line in lines if line[:1].isalnum()]
    return {name: pinned for name, pinned in pairs}
