"""The images install exactly the versions the tests ran with."""

from __future__ import annotations

from pathlib import Path

REQUIREMENTS = Path(__file__).resolve().parents[2] / "requirements"


def pins(lock: Path) -> dict[str, str]:
    pinned = {}
    for line in lock.read_text().splitlines():
        requirement = line.split("#", 1)[0].strip()
        if requirement:
            name, version = requirement.split("==")
            pinned[name.lower().replace("_", "-")] = version
    return pinned


def test_every_runtime_pin_matches_the_development_lock() -> None:
    runtime, development = pins(REQUIREMENTS / "runtime.lock"), pins(REQUIREMENTS / "dev.lock")

    assert runtime, "requirements/runtime.lock pins nothing"
    mismatched = {
        name: (version, development.get(name))
        for name, version in runtime.items()
        if development.get(name) != version
    }
    assert not mismatched, f"runtime.lock vs dev.lock (run scripts/docker/lock-runtime.sh): {mismatched}"
