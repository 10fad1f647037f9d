"""Shared settings for the unit tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from ledger_svc.store.writer import LedgerWriter

# Deadlines make tests that touch SQLite or threads flaky on a loaded machine; the suite
# stays fast through small example counts instead.
settings.register_profile("unit", deadline=None, max_examples=100)
settings.load_profile("unit")


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """The ledger's volume."""
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest.fixture
def writer(data_dir: Path) -> Iterator[LedgerWriter]:
    """A new store on the volume."""
    opened = LedgerWriter.open_or_create(data_dir)
    yield opened
    opened.close()


class FakeClock:
    """A clock (time.monotonic's shape) that moves only when the test moves it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
