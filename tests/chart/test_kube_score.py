"""kube-score, a third-party reviewer, over every scenario's render: nothing CRITICAL, nothing WARNING,
apart from the checks this chart decides against, each with its reason."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.chart.chart_tools import REPO, Rendered, kube_score_binary, kube_version
from tests.chart.conftest import SCENARIOS

DECIDED_AGAINST = {
    # The policy is a value: IfNotPresent by default, Never on kind. Always would make every pod start
    # depend on the registry, and the images are pinned by tag, or by digest where that matters.
    "container-image-pull-policy",
    # The sum pods spread over nodes and zones with topologySpreadConstraints (maxSkew 1), which still
    # schedules where a required anti-affinity would leave pods pending (fewer nodes than replicas).
    "deployment-has-host-podantiaffinity",
}
# What a scenario turns off on purpose, and kube-score rightly reports.
SCENARIO_CHOICES = {
    "network-policy-off": {"pod-networkpolicy"},
    # One sum replica for small machines.
    "values-kind": {"deployment-replicas"},
    "values-minimal": {"deployment-replicas"},
}
# No CPU limits by default (sum.resources, ledger.resources): CFS throttling adds latency to every call
# while the node has CPU to spare; the requests reserve what the pods need. Users may still set limits.
IGNORE_CPU_LIMIT = "--ignore-container-cpu-limit"


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_kube_score_finds_nothing_the_chart_has_not_decided(
    scenario: str, renders: dict[str, Rendered], tmp_path: Path
) -> None:
    manifest = tmp_path / f"{scenario}.yaml"
    manifest.write_text(renders[scenario].text)
    major_minor = ".".join(kube_version().removeprefix("v").split(".")[:2])
    argv = [str(kube_score_binary()), "score", "--output-format", "ci", IGNORE_CPU_LIMIT,
            "--kubernetes-version", f"v{major_minor}"]  # fmt: skip
    for check in sorted(DECIDED_AGAINST | SCENARIO_CHOICES.get(scenario, set())):
        argv += ["--ignore-test", check]
    result = subprocess.run([*argv, str(manifest)], capture_output=True, text=True, check=False, cwd=REPO)
    findings = [line for line in result.stdout.splitlines() if line.startswith(("[CRITICAL]", "[WARNING]"))]
    assert not findings, "\n".join(findings)
    assert result.returncode == 0, result.stdout + result.stderr
