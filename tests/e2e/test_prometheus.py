"""The real Prometheus Operator and Prometheus of kube-prometheus-stack (the pinned chart, with our values;
on the offline path built from the Go module proxy by offline/prometheus-images.sh) select the release's
ServiceMonitors and PrometheusRule: both targets are scraped and up, every rule of ours evaluates
without error, and the ledger's alert goes pending while the ledger is away and resolves when it is back."""

from __future__ import annotations

from typing import Any

from distsum.clients.waiting import wait_until
from tests.e2e.conftest import PROMETHEUS_NAMESPACE, PROMETHEUS_SERVICE, Release
from tests.e2e.kube import Settings, port_forward, prometheus_api, wait_pods_ready

SECONDS = 180  # a scrape and a rule evaluation are 30 s apart at most, after the operator's reload


def test_both_targets_are_scraped_and_up(settings: Settings, release: Release) -> None:
    with port_forward(settings, PROMETHEUS_NAMESPACE, f"svc/{PROMETHEUS_SERVICE}", 9090) as prometheus:

        def ours_up() -> dict[str, str] | None:
            targets = prometheus_api(f"http://{prometheus}", "targets", state="active")["activeTargets"]
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
            groups = prometheus_api(f"http://{prometheus}", "rules")["groups"]
            ours = [group for group in groups if group["name"].startswith("distributed-sum.")]
            rules = [rule for group in ours for rule in group["rules"]]
            if not rules or any(rule["lastEvaluation"].startswith("0001-") for rule in rules):
                return None
            return rules

        rules = wait_until(evaluated, SECONDS, "our rules loaded and evaluated", 2.0)
    failing = {rule["name"]: rule.get("lastError") for rule in rules if rule["health"] != "ok"}
    assert not failing, failing


def _ledger_down(base: str, namespace: str) -> str | None:
    """The state of the LedgerDown alert for the namespace (pending, firing), None while it is inactive."""
    states = [
        alert["state"]
        for alert in prometheus_api(base, "alerts")["alerts"]
        if alert["labels"].get("alertname") == "LedgerDown" and alert["labels"].get("namespace") == namespace
    ]
    return states[0] if states else None


def test_the_ledger_alert_goes_pending_without_the_ledger_and_resolves_when_it_is_back(
    apps: Any, core: Any, settings: Settings, release: Release
) -> None:
    (ledger,) = apps.list_namespaced_stateful_set(
        release.namespace, label_selector=release.selector("ledger")
    ).items
    name = ledger.metadata.name
    with port_forward(settings, PROMETHEUS_NAMESPACE, f"svc/{PROMETHEUS_SERVICE}", 9090) as prometheus:
        base = f"http://{prometheus}"
        assert _ledger_down(base, release.namespace) is None, "LedgerDown was active before the ledger went"
        apps.patch_namespaced_stateful_set_scale(name, release.namespace, {"spec": {"replicas": 0}})
        try:
            state = wait_until(
                lambda: _ledger_down(base, release.namespace), SECONDS, "LedgerDown pending or firing", 2.0
            )
        finally:
            apps.patch_namespaced_stateful_set_scale(name, release.namespace, {"spec": {"replicas": 1}})
        assert state in {"pending", "firing"}, state
        wait_pods_ready(core, release.namespace, release.selector("ledger"), 1, SECONDS)
        wait_until(lambda: _ledger_down(base, release.namespace) is None, SECONDS, "LedgerDown resolved", 2.0)
