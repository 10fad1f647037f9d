"""The real Prometheus Operator and Prometheus of kube-prometheus-stack (the pinned chart, with our values;
on the offline path built from the Go module proxy by offline/prometheus-images.sh) select the release's
ServiceMonitors and PrometheusRule: both targets are scraped and up, and every rule of ours evaluates
without error."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from typing import Any

from distsum.clients.waiting import wait_until
from tests.e2e.conftest import PROMETHEUS_NAMESPACE, PROMETHEUS_SERVICE, Release
from tests.e2e.kube import Settings, port_forward

SECONDS = 180  # a scrape and a rule evaluation are 30 s apart at most, after the operator's reload


def _api(base: str, path: str, **query: str) -> Any:
    url = f"{base}/api/v1/{path}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
    with urllib.request.urlopen(url, timeout=10) as reply:
        body = json.loads(reply.read())
    assert body["status"] == "success", body
    return body["data"]


def test_both_targets_are_scraped_and_up(settings: Settings, release: Release) -> None:
    with port_forward(settings, PROMETHEUS_NAMESPACE, f"svc/{PROMETHEUS_SERVICE}", 9090) as prometheus:

        def ours_up() -> dict[str, str] | None:
            targets = _api(f"http://{prometheus}", "targets", state="active")["activeTargets"]
            health = {
                target["labels"].get("service", "?"): target["health"]
                for target in targets
                if target["labels"].get("namespace") == release.namespace
            }
            return health if len(health) == 2 and set(health.values()) == {"up"} else None

        health = wait_until(ours_up, SECONDS, "both of the release's targets up in Prometheus", 2.0)
    assert len(health) == 2, health


def test_every_rule_of_ours_is_loaded_and_evaluates(settings: Settings, release: Release) -> None:
    with port_forward(settings, PROMETHEUS_NAMESPACE, f"svc/{PROMETHEUS_SERVICE}", 9090) as prometheus:

        def evaluated() -> list[dict[str, Any]] | None:
            groups = _api(f"http://{prometheus}", "rules")["groups"]
            ours = [group for group in groups if group["name"].startswith("distributed-sum.")]
            rules = [rule for group in ours for rule in group["rules"]]
            if not rules or any(rule["lastEvaluation"].startswith("0001-") for rule in rules):
                return None
            return rules

        rules = wait_until(evaluated, SECONDS, "our rules loaded and evaluated", 2.0)
    failing = {rule["name"]: rule.get("lastError") for rule in rules if rule["health"] != "ok"}
    assert not failing, failing
