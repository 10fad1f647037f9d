"""What the images hold: the services and their runtime only, configured to run as uid 10001."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from tests.containers.conftest import Containers
from tests.containers.docker_cli import APP_UID, LEDGER_IMAGE, SUM_IMAGE, docker

REPO_ROOT = Path(__file__).resolve().parents[2]

# Runs inside the image: which modules import, which programs are on PATH, what lies under the venv.
PROBE = """
import importlib.util, json, os, shutil, sys
names = [name for _, dirs, files in os.walk(sys.prefix) for name in dirs + files]
print(json.dumps({
    "modules": {m: importlib.util.find_spec(m) is not None
                for m in ("sum_svc", "ledger_svc", "distsum", "devstack", "pip", "setuptools")},
    "programs": {p: shutil.which(p) for p in ("python", "distsum", "pip", "pip3", "gcc", "cc", "make")},
    "devstack_files": [n for n in names if "devstack" in n],
}))
"""

IMAGES = {
    SUM_IMAGE: (["python", "-m", "sum_svc"], {"50051/tcp", "9464/tcp"}),
    LEDGER_IMAGE: (["python", "-m", "ledger_svc"], {"8080/tcp"}),
}


@pytest.mark.parametrize("image", list(IMAGES))
def test_image_holds_the_services_but_no_harness_installer_or_compiler(
    image: str, containers: Containers
) -> None:
    found = json.loads(containers.run(image, "python", "-c", PROBE))
    assert found["modules"] == {
        "sum_svc": True,
        "ledger_svc": True,
        "distsum": True,
        "devstack": False,
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
    assert found["devstack_files"] == []


@pytest.mark.parametrize("image", list(IMAGES))
def test_image_config_runs_the_service_as_uid_10001(image: str) -> None:
    entrypoint, ports = IMAGES[image]
    config = json.loads(docker("image", "inspect", image))[0]["Config"]
    assert config["User"] == f"{APP_UID}:{APP_UID}"
    assert config["Entrypoint"] == entrypoint
    assert set(config["ExposedPorts"]) == ports
    assert config["Env"].count("PYTHONDONTWRITEBYTECODE=1") == 1
    with (REPO_ROOT / "pyproject.toml").open("rb") as pyproject:
        version = tomllib.load(pyproject)["project"]["version"]
    assert config["Labels"]["org.opencontainers.image.version"] == version
