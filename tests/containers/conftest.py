"""Fixtures of the container tests: the built images, run the hardened way, always removed afterwards."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest

from tests.containers.docker_cli import (
    APP_UID,
    HARDENED,
    LEDGER_IMAGE,
    SUM_IMAGE,
    Container,
    docker,
    unavailable_reason,
)


@pytest.fixture(scope="session", autouse=True)
def images() -> None:
    """Skips every container test, before it starts a broker, where Docker or an image is missing."""
    reason = unavailable_reason([SUM_IMAGE, LEDGER_IMAGE])
    if reason:
        pytest.skip(f"container tests need Docker and the service images: {reason}")


class Containers:
    """Starts containers named after the test, and removes every one of them at teardown."""

    def __init__(self, test_name: str):
        self._prefix = "distsum-" + re.sub(r"[^a-zA-Z0-9_.-]+", "-", test_name)[:40]
        self._started: list[Container] = []

    def _new(self) -> Container:
        container = Container(f"{self._prefix}-{uuid.uuid4().hex[:8]}")
        # Registered before `docker run`, which can leave a created container behind when it fails.
        self._started.append(container)
        return container

    def start(self, image: str, *options: str, env: dict[str, str] | None = None) -> Container:
        """`docker run --detach` of the image's entrypoint, hardened, with extra docker options."""
        container = self._new()
        env_options = [arg for key, value in (env or {}).items() for arg in ("--env", f"{key}={value}")]
        docker("run", "--detach", "--name", container.name, *HARDENED, *options, *env_options, image)
        return container

    def run(self, image: str, entrypoint: str, *argv: str) -> str:
        """stdout of a one-off hardened, network-less run of entrypoint in the image."""
        container = self._new()
        return docker(
            "run",
            "--name",
            container.name,
            *HARDENED,
            "--network",
            "none",
            "--entrypoint",
            entrypoint,
            image,
            *argv,
        )

    def remove_all(self) -> None:
        for container in self._started:
            container.remove()


@pytest.fixture
def containers(request: pytest.FixtureRequest) -> Iterator[Containers]:
    started = Containers(request.node.name)
    yield started
    started.remove_all()


def assert_hardened(container: Container, module: str) -> None:
    """PID 1 is the service, as uid 10001, without capabilities or escalation, on a read-only root."""
    host_config = container.inspect()["HostConfig"]
    assert host_config["ReadonlyRootfs"] is True
    assert host_config["CapDrop"] == ["ALL"]
    assert any(opt.startswith("no-new-privileges") for opt in host_config["SecurityOpt"])

    cmdline = container.exec("cat", "/proc/1/cmdline").stdout.split("\0")
    assert cmdline[:3] == ["python", "-m", module], cmdline
    status = dict(
        line.split(":", 1)
        for line in container.exec("cat", "/proc/1/status").stdout.splitlines()
        if ":" in line
    )
    assert status["Uid"].split() == [str(APP_UID)] * 4, status["Uid"]
    assert status["Gid"].split() == [str(APP_UID)] * 4, status["Gid"]
    for capabilities in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert int(status[capabilities], 16) == 0, f"{capabilities}: {status[capabilities]}"
    assert status["NoNewPrivs"].strip() == "1"

    assert container.exec("id", "-u").stdout.strip() == str(APP_UID)
    write = container.exec("touch", "/probe")
    assert write.returncode != 0
    assert "Read-only file system" in write.stderr, write.stderr
