"""scripts/cluster/up.sh from start to end against recording stand-ins for docker, kind, helm, kubectl and
make (kind, helm and kubectl handed over the way a user hands over their own: DISTSUM_KIND, DISTSUM_HELM,
DISTSUM_KUBECTL): what it installs, in which order, with which values, and what it tells the user."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from tests.deploy.layout import (
    APP_CHART,
    REMOTE_RELEASES,
    REPO,
    load_yaml,
    pinned,
    skaffold_app_values,
)
from tests.deploy.stand_ins import run_up


def _helm_installs(calls: list[str]) -> list[list[str]]:
    return [shlex.split(call) for call in calls if call.startswith("helm upgrade --install ")]


def _flag(argv: list[str], flag: str) -> str:
    return argv[argv.index(flag) + 1]


def _set_values(argv: list[str]) -> dict[str, str]:
    pairs = [argv[index + 1] for index, arg in enumerate(argv) if arg == "--set"]
    return dict(pair.split("=", 1) for pair in pairs)


def _index(calls: list[str], pattern: str) -> int:
    (index,) = [number for number, call in enumerate(calls) if re.search(pattern, call)]
    return index


def _app_version() -> str:
    return str(load_yaml(APP_CHART / "Chart.yaml")["appVersion"])


def _assert_pinned_install(argv: list[str], prefix: str) -> None:
    pins = pinned()
    assert argv[3] == pins[f"{prefix}_RELEASE"]
    # The pinned package of scripts/cluster/chart-package.sh, the one tests/deploy renders.
    assert Path(argv[4]).name == f"{pins[f'{prefix}_CHART']}-{pins[f'{prefix}_VERSION']}.tgz"
    assert Path(argv[4]).is_file()
    assert _flag(argv, "--namespace") == pins[f"{prefix}_NAMESPACE"]
    assert _flag(argv, "--values") == str(REPO / "k8s" / "observability" / f"{pins[f'{prefix}_CHART']}.yaml")
    assert "--wait" in argv


def _assert_app_install(argv: list[str], profile: str | None) -> None:
    pins = pinned()
    assert argv[3:5] == [pins["APP_RELEASE"], pins["APP_CHART"]]
    assert _flag(argv, "--namespace") == pins["APP_NAMESPACE"]
    assert _flag(argv, "--values") == pins["APP_VALUES"]
    # The same values skaffold passes for the same images: both ways of deploying agree.
    assert _set_values(argv) == skaffold_app_values(profile, _app_version())


def test_full_stack_installs_everything_in_order(tmp_path: Path) -> None:
    calls, out = run_up(tmp_path)
    installs = _helm_installs(calls)
    assert len(installs) == len(REMOTE_RELEASES) + 1
    for argv, prefix in zip(installs, REMOTE_RELEASES, strict=False):
        _assert_pinned_install(argv, prefix)
    _assert_app_install(installs[-1], None)

    assert _index(calls, r"apply -f .*namespaces\.yaml") < _index(calls, "helm upgrade --install strimzi")
    assert _index(calls, "create secret generic grafana-admin") < _index(
        calls, "install kube-prometheus-stack"
    )
    crds = _index(calls, "wait .*crd/servicemonitors.monitoring.coreos.com")
    assert _index(calls, "install kube-prometheus-stack") < crds < _index(calls, "install loki")
    images = [f"distributed-sum/{name}:{_app_version()}" for name in ("sum-svc", "ledger-svc")]
    load = _index(calls, "^kind load docker-image --name distsum " + " ".join(images) + "$")
    assert _index(calls, "^make images$") < load < _index(calls, "install distributed-sum")
    assert _index(calls, "install distributed-sum") < _index(calls, "wait kafka --all")

    assert "port-forward svc/distributed-sum-sum 50051:50051" in out
    assert "port-forward svc/distributed-sum-ledger 8080:8080" in out
    assert "port-forward svc/kube-prometheus-stack-grafana 3000:80" in out
    assert "get secret grafana-admin -o jsonpath='{.data.admin-password}' | base64 -d" in out


@pytest.mark.parametrize("how", ["flag", "env"])
def test_no_observability_installs_only_the_operator_and_the_app(tmp_path: Path, how: str) -> None:
    if how == "flag":
        calls, out = run_up(tmp_path, "--no-observability")
    else:
        calls, out = run_up(tmp_path, DISTSUM_OBSERVABILITY="0")
    operator, app = _helm_installs(calls)
    _assert_pinned_install(operator, "STRIMZI")
    _assert_app_install(app, "minimal")
    assert not any("secret" in call for call in calls)
    assert "grafana" not in out.lower()
