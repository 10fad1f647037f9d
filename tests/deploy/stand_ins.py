"""Run the cluster scripts for real against stand-ins for the tools they call (no cluster is available here).

Each stand-in is a bash script in a directory put first on PATH; the stand-ins record their command
lines in the file $CALLS, next to that directory.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tests.deploy.layout import CLUSTER_SCRIPTS

BASH = shutil.which("bash") or "/bin/bash"


def stand_in(bin_dir: Path, name: str, body: str) -> None:
    tool = bin_dir / name
    tool.write_text(f"#!{BASH}\n{body}\n")
    tool.chmod(0o755)


def run_cluster_script(
    script: str, bin_dir: Path, *args: str, path_rest: str | None = None, **env_extra: str
) -> subprocess.CompletedProcess[str]:
    """Run a cluster script with bin_dir first on PATH (path_rest="" leaves only bin_dir)."""
    rest = os.environ.get("PATH", "") if path_rest is None else path_rest
    path = os.pathsep.join(entry for entry in (str(bin_dir), rest) if entry)
    env = {**os.environ, "PATH": path, "CALLS": str(bin_dir.parent / "calls"), **env_extra}
    return subprocess.run(
        [BASH, str(CLUSTER_SCRIPTS / script), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def recorded_calls(bin_dir: Path) -> list[str]:
    calls = bin_dir.parent / "calls"
    return calls.read_text().splitlines() if calls.exists() else []
