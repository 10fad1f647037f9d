"""The skip policy (tests/skips.py) on a real pytest run: an unexpected skip fails a strict run, an
expected one does not, and both are listed."""

from __future__ import annotations

import pytest

from tests.skips import expected_skip

SUITE = """
import pytest
from tests.skips import expected_skip

def test_runs():
    assert True

def test_cannot_mount():
    expected_skip("not-root", "mounting needs root")

{unexpected}
"""
UNEXPECTED = """
@pytest.fixture
def cluster():
    pytest.skip("no cluster answers")

def test_needs_a_cluster(cluster):
    assert cluster
"""


def run(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, strict: bool, unexpected: str
) -> pytest.RunResult:
    monkeypatch.setenv("DISTSUM_STRICT_SKIPS", "1" if strict else "0")
    pytester.makepyfile(SUITE.format(unexpected=unexpected))
    return pytester.runpytest("-p", "tests.skips", "-p", "no:asyncio")


def test_an_unexpected_skip_fails_a_strict_run_and_is_listed(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = run(pytester, monkeypatch, strict=True, unexpected=UNEXPECTED)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=1, skipped=2)
    result.stdout.fnmatch_lines(
        [
            "*expected skips (allowed)*",
            "*test_cannot_mount: [[]expected: not-root[]] mounting needs root",
            "*unexpected skips (these fail the run)*",
            "*test_needs_a_cluster: no cluster answers",
        ]
    )


def test_expected_skips_pass_a_strict_run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    result = run(pytester, monkeypatch, strict=True, unexpected="")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["*expected skips (allowed)*"])
    result.stdout.no_fnmatch_line("*unexpected skips*")


def test_outside_make_an_unexpected_skip_is_only_listed(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = run(pytester, monkeypatch, strict=False, unexpected=UNEXPECTED)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["*unexpected skips (DISTSUM_STRICT_SKIPS=1 would fail the run)*"])


def test_only_a_documented_reason_is_expected() -> None:
    with pytest.raises(ValueError, match="not an expected skip reason"):
        expected_skip("tool-missing", "npm is not installed")
