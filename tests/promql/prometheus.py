"""Debian's Prometheus and promtool, and the chart's alerting rules, for the PromQL tests."""

from __future__ import annotations

import math
import subprocess
import urllib.parse
import urllib.request
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pytest
import yaml

from distsum.clients.ledger import http_json
from distsum.clients.waiting import wait_until
from localstack.processes import ManagedProcess
from tests.chart.chart_tools import REPO, Rendered, Values

ENSURE = REPO / "scripts" / "prometheus" / "ensure.sh"
# Not the release name, so that a template scoping by .Release.Name instead of .Release.Namespace shows.
NAMESPACE = "distsum-test"
# The values the rules are rendered with: every optional alert included.
BACKUPS_ON = Values(sets=("ledger.backup.enabled=true",))
_SKIP = 77


def prometheus_bin_dir() -> Path:
    """Where prometheus and promtool are, installing Debian's package if needed (skip if we can't)."""
    done = subprocess.run([str(ENSURE)], capture_output=True, text=True, check=False)
    if done.returncode == _SKIP:
        pytest.skip(f"Prometheus unavailable: {done.stderr.strip()}")
    assert done.returncode == 0, f"{ENSURE} failed:\n{done.stderr}"
    return Path(done.stdout.strip())


def rule_groups() -> list[dict[str, Any]]:
    """The chart's alerting rules, rendered into NAMESPACE, with every optional alert (backups on)."""
    (rule,) = Rendered.of(BACKUPS_ON, namespace=NAMESPACE).of_kind("PrometheusRule")
    groups: list[dict[str, Any]] = rule["spec"]["groups"]
    return groups


@dataclass(frozen=True)
class Target:
    """A scrape target with the labels prometheus-operator attaches to a ServiceMonitor's target."""

    port: int
    service: str
    pod: str
    container: str
    endpoint: str

    def scrape_config(self) -> dict[str, Any]:
        labels = {
            "namespace": NAMESPACE,
            "service": self.service,
            "job": self.service,
            "pod": self.pod,
            "container": self.container,
            "endpoint": self.endpoint,
        }
        return {
            "job_name": f"serviceMonitor/{NAMESPACE}/{self.pod}/0",
            "static_configs": [{"targets": [f"127.0.0.1:{self.port}"], "labels": labels}],
        }


class PrometheusServer:
    """A real Prometheus scraping every second and evaluating the chart's rules every second."""

    def __init__(
        self, bin_dir: Path, work_dir: Path, port: int, targets: list[Target], groups: list[dict[str, Any]]
    ):
        self.url = f"http://127.0.0.1:{port}"
        work_dir.mkdir(parents=True, exist_ok=True)
        rules = work_dir / "rules.yaml"
        rules.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
        config = work_dir / "prometheus.yml"
        config.write_text(
            yaml.safe_dump(
                {
                    "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
                    "rule_files": [str(rules)],
                    "scrape_configs": [target.scrape_config() for target in targets],
                },
                sort_keys=False,
            )
        )
        self.process = ManagedProcess(
            "prometheus",
            [
                str(bin_dir / "prometheus"),
                f"--config.file={config}",
                f"--storage.tsdb.path={work_dir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            {},
            work_dir / "prometheus.log",
        )

    def __enter__(self) -> PrometheusServer:
        self.process.start()

        def ready() -> bool:
            if not self.process.running:
                raise AssertionError(f"prometheus exited:\n{self.process.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as response:
                    return bool(response.status == HTTPStatus.OK)
            except OSError:
                return False

        wait_until(ready, 30, "Prometheus to be ready", 0.1)
        return self

    def __exit__(self, *exc: object) -> None:
        self.process.stop()

    def api(self, path: str, **params: str) -> Any:
        status, body = http_json(f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}", timeout=10)
        assert status == HTTPStatus.OK and body["status"] == "success", f"{path} {params}: {status} {body}"
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = self.api("query", query=expr)
        assert data["resultType"] == "vector", data
        result: list[dict[str, Any]] = data["result"]
        return result


def has_finite_value(result: list[dict[str, Any]]) -> bool:
    """At least one series with a real number (a quantile of no traffic is NaN)."""
    return any(math.isfinite(float(series["value"][1])) for series in result)
