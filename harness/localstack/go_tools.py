"""The pinned Go tools (grpcurl, ghz, ...): scripts/go-tool.sh builds each once into the cache."""

from __future__ import annotations

import subprocess
from pathlib import Path

GO_TOOL = Path(__file__).resolve().parents[2] / "scripts" / "go-tool.sh"


def go_tool(name: str) -> Path:
    """The binary of the pinned tool `name`, built first if the cache lacks it."""
    proc = subprocess.run(["bash", str(GO_TOOL), name], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"scripts/go-tool.sh {name} failed (exit {proc.returncode}):\n{proc.stderr}")
    return Path(proc.stdout.strip().splitlines()[-1])
