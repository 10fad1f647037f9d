"""A skip is a failure unless it is expected.

A test that cannot run here for a reason the project accepts calls `expected_skip` with one of the
reasons below; any other skip (a tool that failed, a fixture that found nothing to test against) fails
the run where DISTSUM_STRICT_SKIPS=1, as `make test` and `make e2e` set it, so a tier cannot go green
having tested nothing. Both kinds are listed at the end of every run.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

EXPECTED = {
    "not-root": "the test needs root (mounting a volume, giving a directory to another uid)",
}
_PREFIX = "[expected: "


def expected_skip(reason: str, detail: str) -> NoReturn:
    """Skip for one of the accepted reasons (a key of EXPECTED)."""
    if reason not in EXPECTED:
        raise ValueError(f"{reason!r} is not an expected skip reason: {sorted(EXPECTED)}")
    pytest.skip(f"{_PREFIX}{reason}] {detail}")


def strict() -> bool:
    return os.environ.get("DISTSUM_STRICT_SKIPS") == "1"


class SkipPolicy:
    def __init__(self) -> None:
        self.expected: list[str] = []
        self.unexpected: list[str] = []

    @pytest.hookimpl
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if not report.skipped:
            return
        longrepr = report.longrepr
        message = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        line = f"{report.nodeid}: {message.removeprefix('Skipped: ')}"
        (self.expected if _PREFIX in message else self.unexpected).append(line)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if strict() and self.unexpected and exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    @pytest.hookimpl
    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if self.expected:
            terminalreporter.section("expected skips (allowed)")
            for line in self.expected:
                terminalreporter.line(line)
        if self.unexpected:
            verdict = "these fail the run" if strict() else "DISTSUM_STRICT_SKIPS=1 would fail the run"
            terminalreporter.section(f"unexpected skips ({verdict})", red=strict())
            for line in self.unexpected:
                terminalreporter.line(line)


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(SkipPolicy(), "distsum-skip-policy")
