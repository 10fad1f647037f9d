"""The docker CLI as the container tests drive it: run, inspect, exec and kill named containers."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from typing import Any

TAG = os.environ.get("IMAGE_TAG", "dev")
SUM_IMAGE = f"distributed-sum/sum-svc:{TAG}"
LEDGER_IMAGE = f"distributed-sum/ledger-svc:{TAG}"
APP_UID = 10001
# How every deployment runs the images; the tests run them only this way.
HARDENED = [
    "--read-only",
    "--user",
    f"{APP_UID}:{APP_UID}",
    "--cap-drop",
    "ALL",
    "--security-opt",
    "no-new-privileges",
]


class DockerError(RuntimeError):
    pass


def docker(*args: str, timeout: float = 60) -> str:
    """stdout of `docker ARGS`; DockerError (with stderr) when it fails."""
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=False)
    if result.returncode != 0:
        raise DockerError(f"docker {' '.join(args)} exited {result.returncode}: {result.stderr.strip()}")
    return result.stdout


def unavailable_reason(images: list[str]) -> str | None:
    """Why the container tests cannot run here, or None when they can."""
    if shutil.which("docker") is None:
        return "no docker CLI on PATH"
    try:
        docker("info", "--format", "{{.ServerVersion}}", timeout=30)
    except (DockerError, subprocess.TimeoutExpired) as exc:
        return f"no Docker engine answers (`make images` starts one): {exc}"
    missing = []
    for image in images:
        try:
            docker("image", "inspect", image)
        except DockerError:
            missing.append(image)
    return f"not built: {', '.join(missing)} (run `make images`)" if missing else None


@dataclass
class Container:
    name: str

    def inspect(self) -> dict[str, Any]:
        found: list[dict[str, Any]] = json.loads(docker("container", "inspect", self.name))
        return found[0]

    def exec(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["docker", "exec", self.name, *argv], capture_output=True, text=True, timeout=30, check=False
        )

    def logs(self, lines: int = 40) -> str:
        result = subprocess.run(
            ["docker", "logs", "--tail", str(lines), self.name],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        return result.stdout + result.stderr

    def assert_running(self) -> None:
        state = self.inspect()["State"]
        if not state["Running"]:
            raise AssertionError(f"{self.name} exited with {state['ExitCode']}:\n{self.logs()}")

    def kill(self) -> int:
        """SIGKILL to the container's PID 1, which takes every other process of the container with it."""
        docker("kill", "--signal", "KILL", self.name)
        return int(docker("wait", self.name))

    def remove(self) -> None:
        subprocess.run(
            ["docker", "rm", "--force", "--volumes", self.name], capture_output=True, timeout=60, check=False
        )
