"""The images install exactly the versions the tests ran with."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
REQUIREMENTS = REPO / "requirements"


def pins(lock: Path) -> dict[str, str]:
    """name -> version of a lock written by scripts/lock.sh (a `name==version` line, then its hashes)."""
    pinned = {}
    for line in lock.read_text().splitlines():
        if line[:1].isalnum():
            name, version = line.removesuffix("\\").strip().split("==")
            pinned[name.lower().replace("_", "-")] = version
    return pinned


def hashes(lock: Path) -> dict[str, int]:
    """name -> how many sha256 hashes the lock holds for it."""
    counted: dict[str, int] = {}
    name = ""
    for line in lock.read_text().splitlines():
        if line[:1].isalnum():
            name = line.split("==")[0].lower().replace("_", "-")
            counted[name] = 0
        elif line.strip().startswith("--hash=sha256:"):
            counted[name] += 1
    return counted


@pytest.mark.parametrize("lock", ["dev.lock", "runtime.lock", "build.lock"])
def test_every_locked_package_has_its_hashes(lock: str) -> None:
    """pip --require-hashes refuses a package without one; a lock that lost them would fail late."""
    counted = hashes(REQUIREMENTS / lock)
    assert counted, f"requirements/{lock} pins nothing"
    assert counted.keys() == pins(REQUIREMENTS / lock).keys()
    assert all(counted.values()), {name: n for name, n in counted.items() if not n}


def test_every_install_checks_the_hashes() -> None:
    makefile = (REPO / "Makefile").read_text()
    assert "--require-hashes -r requirements/dev.lock" in makefile
    assert "--no-build-isolation -e ." in makefile, "an isolated build would fetch setuptools unchecked"
    for dockerfile in ("Dockerfile.sum", "Dockerfile.ledger"):
        text = (REPO / dockerfile).read_text()
        assert "--require-hashes -r runtime.lock -r build.lock" in text, dockerfile
        assert "--no-build-isolation ." in text, dockerfile


def test_every_runtime_pin_matches_the_development_lock() -> None:
    runtime, development = pins(REQUIREMENTS / "runtime.lock"), pins(REQUIREMENTS / "dev.lock")

    assert runtime, "requirements/runtime.lock pins nothing"
    mismatched = {
        name: (version, development.get(name))
        for name, version in runtime.items()
        if development.get(name) != version
    }
    assert not mismatched, f"runtime.lock vs dev.lock (run scripts/lock.sh): {mismatched}"
