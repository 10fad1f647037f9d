"""pins.env is the one place a version is pinned: no script assigns one of its own, and every file that can
only hold a copy (a pom.xml, a wrapper go.mod) holds the same value."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.deploy.layout import PINS, REPO, pinned

SCRIPTS = sorted([*REPO.glob("scripts/**/*.sh"), *REPO.glob("tools/**/*.sh"), *REPO.glob("offline/**/*.sh")])


def test_pins_are_plain_assignments_bash_reads_as_the_tests_do() -> None:
    names = " ".join(pinned())
    shown = subprocess.run(
        [
            "bash",
            "-c",
            f'set -eu; source "{PINS}"; for n in {names}; do printf "%s=%s\\n" "$n" "${{!n}}"; done',
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert dict(line.split("=", 1) for line in shown.splitlines()) == pinned()


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: str(p.relative_to(REPO)))
def test_no_script_pins_a_version_of_its_own(script: Path) -> None:
    text = script.read_text()
    for name, value in pinned().items():
        assert not re.search(rf"^\s*{name}=", text, re.MULTILINE), f"{name} is assigned here; read pins.env"
        if name.endswith("_VERSION") and re.fullmatch(r"v?\d+\.\d+\.\d+", value):
            assert not re.search(rf"(?<![\w.]){re.escape(value)}(?![\w.])", text), f"repeats {name}={value}"


def test_the_copies_of_pins_agree() -> None:
    pins = pinned()
    copies = [
        ("tools/kafka/pom.xml", f"<kafka.version>{pins['KAFKA_VERSION']}</kafka.version>"),
        ("tests/chart/strimzi/pom.xml", f"<strimzi.version>{pins['STRIMZI_VERSION']}</strimzi.version>"),
        ("offline/go/kubernetes/go.mod", f"require k8s.io/kubernetes {pins['KUBERNETES_VERSION']}"),
        (
            "tools/go/skaffold/go.mod",
            f"require github.com/GoogleContainerTools/skaffold/v2 {pins['SKAFFOLD_VERSION']}",
        ),
        ("offline/go/etcd/go.mod", f"require go.etcd.io/etcd/server/v3 {pins['ETCD_VERSION']}"),
    ]
    copies.append(("loadtest/Chart.yaml", f'appVersion: "{pins["K6_VERSION"]}"'))
    for dockerfile in ("Dockerfile.sum", "Dockerfile.ledger"):
        copies.append((dockerfile, f"ARG BASE_IMAGE={pins['PYTHON_BASE_IMAGE']}"))
    copies.append(("requirements/build.lock", f"setuptools=={pins['SETUPTOOLS_VERSION']} \\"))
    for path, line in copies:
        assert line in (REPO / path).read_text(), f"{path} does not hold {line!r}"
