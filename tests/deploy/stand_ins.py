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


# One recorder for every external tool scripts/cluster/up.sh calls: it logs its command line and answers
# the few queries up.sh reads.
UP_RECORDER = """name=${0##*/}
echo "$name $*" >> "$CALLS"
case "$name $*" in
  "docker info --format"*) echo runc-nosysres ;;
  "kind get clusters") echo distsum ;;
  "kubectl "*"get secret"*) exit 1 ;;
  "kubectl "*"create secret"*) cat > /dev/null ;;
  "kubectl "*"get service"*) printf 'distributed-sum-sum 50051 9464\\ndistributed-sum-ledger 8080\\n' ;;
  "kubectl "*"get deployment"*) echo deployment.apps/distributed-sum-sum ;;
  "kubectl "*"get statefulset"*) echo statefulset.apps/distributed-sum-ledger ;;
esac
exit 0"""


def run_up(tmp_path: Path, *args: str, **env_extra: str) -> tuple[list[str], str]:
    """Run scripts/cluster/up.sh against UP_RECORDER stand-ins (kind, helm and kubectl handed over the way
    a user hands over their own); its recorded calls and its stdout. The chart packages are real
    (scripts/cluster/chart-package.sh runs as it is)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("docker", "kind", "helm", "kubectl", "make"):
        stand_in(bin_dir, tool, UP_RECORDER)
    # Empty is up.sh's default: the developer's own settings must not change what the test sees.
    unset = {"DISTSUM_OBSERVABILITY": "", "DISTSUM_IMAGE_TAG": ""}
    tools = {f"DISTSUM_{tool.upper()}": str(bin_dir / tool) for tool in ("kind", "helm", "kubectl")}
    done = run_cluster_script(
        "up.sh", bin_dir, *args, DISTSUM_CLUSTER_PATH="online", **{**unset, **tools, **env_extra}
    )
    assert done.returncode == 0, done.stderr
    return recorded_calls(bin_dir), done.stdout
