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
