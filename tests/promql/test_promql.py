"""The dashboards' and alerts' PromQL against a real Prometheus scraping the real services.

Grafana's variables are replaced with short windows ($__rate_interval = 1m after seconds of 1 s scrapes);
the alerts run with the chart's own windows. promtool checks the rendered rules and runs
alerts_test.yaml, which makes every alert fire on a bad series and stay silent on a good one.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from distsum.clients.waiting import WaitTimeout, wait_until
from tests.chart.chart_tools import CHART
from tests.promql.conftest import DECOY_POD
from tests.promql.prometheus import NAMESPACE, PrometheusServer, has_finite_value
from tests.promql.stack import LEDGER_POD, SUM_PODS

DASHBOARDS = sorted((CHART / "dashboards").glob("*.json"))
UIDS = {"sum-service": "distsum-sum-service", "ledger": "distsum-ledger"}
GRAFANA_VARIABLES = {
    "datasource": "prometheus",
    "namespace": NAMESPACE,
    "__rate_interval": "1m",
    "__interval": "1m",
    "__range": "1m",
}
LABEL_VALUES = re.compile(r"label_values\((\w+),\s*(\w+)\)")
# The alerts' convention: the expression's last line is `<comparison> <number>`; the rest is the signal.
THRESHOLD_LINE = re.compile(r"\n\s*(?:[<>]=?|[!=]=)\s*[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?\s*$")
# Alerts the traffic (dead letters, refused conflicting events) must trip, and ones it must not.
TRIPPED = {"LedgerDeadLettersGrowing", "LedgerRequestIdConflicts"}
QUIET = {
    "SumErrorRatioHigh",
    "SumKafkaUnreachable",
    "SumServiceDown",
    "LedgerConsumerLagHigh",
    "LedgerStalled",
    "LedgerStoreNotWritable",
    "LedgerKafkaLogRestarted",
    "LedgerKafkaLogUnknown",
    "LedgerDown",
    "LedgerBackupStale",
}


def _load(path: Path) -> dict[str, Any]:
    board: dict[str, Any] = json.loads(path.read_text())
    return board


def _panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    return [panel for panel in board["panels"] if panel["type"] != "row"]


def _substitute(expr: str) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        assert name in GRAFANA_VARIABLES, f"unknown dashboard variable ${name} in {expr}"
        return GRAFANA_VARIABLES[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", value, expr)


def _dashboard_queries() -> list[tuple[str, str]]:
    """(where, PromQL) for every panel target and query variable, variables substituted."""
    queries = []
    for path in DASHBOARDS:
        board = _load(path)
        for variable in board["templating"]["list"]:
            if variable["type"] == "query":
                match = LABEL_VALUES.fullmatch(variable["definition"])
                assert match, f"{path.stem} ${variable['name']}: not label_values(metric, label)"
                metric, label = match.groups()
                queries.append((f"{path.stem} ${variable['name']}", f"group by ({label}) ({metric})"))
        for panel in _panels(board):
            for target in panel["targets"]:
                where = f"{path.stem} '{panel['title']}' {target['refId']}"
                queries.append((where, _substitute(target["expr"])))
    return queries


def _alerts(groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def _wait_for_all(server: PrometheusServer, queries: list[tuple[str, str]], what: str) -> None:
    """Each query must return data at some poll: the traffic was a burst, so a rate over a short
    window has data for a while and then none again."""
    pending = dict(queries)

    def all_had_data() -> bool:
        for where, expr in list(pending.items()):
            if has_finite_value(server.query(expr)):
                del pending[where]
        return not pending

    try:
        wait_until(all_had_data, 30, what, 0.5)
    except WaitTimeout:
        pytest.fail(f"{what}: no data from\n" + "\n".join(f"{w}: {e}" for w, e in pending.items()))


def test_dashboards_use_the_shared_variables_and_no_fixed_windows() -> None:
    assert {path.stem for path in DASHBOARDS} == set(UIDS)
    for path in DASHBOARDS:
        board = _load(path)
        assert board["uid"] == UIDS[path.stem]
        assert board["schemaVersion"] == 39
        variables = {v["name"]: v for v in board["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource"
        assert variables["datasource"]["query"] == "prometheus"
        # Each dashboard lists the namespaces where its own service reports.
        own_metric = {"sum-service": "sum_grpc_requests_total", "ledger": "ledger_store_writable"}[path.stem]
        assert variables["namespace"]["definition"] == f"label_values({own_metric}, namespace)"
        assert variables["namespace"]["datasource"]["uid"] == "${datasource}"
        panels = _panels(board)
        assert len({panel["id"] for panel in board["panels"]}) == len(board["panels"])
        for panel in panels:
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
            assert panel["targets"], panel["title"]
            for target in panel["targets"]:
                expr = target["expr"]
                assert 'namespace="$namespace"' in expr, (panel["title"], expr)
                windows = re.findall(r"\[([^\]]+)\]", expr)
                assert set(windows) <= {"$__rate_interval", "$__range"}, (panel["title"], windows)


def test_every_dashboard_query_returns_data(prometheus: PrometheusServer) -> None:
    _wait_for_all(prometheus, _dashboard_queries(), "every dashboard query to return data")


@pytest.mark.parametrize(("stem", "pods"), [("sum-service", set(SUM_PODS)), ("ledger", {LEDGER_POD})])
def test_resource_panels_show_only_the_services_pods(
    prometheus: PrometheusServer, stem: str, pods: set[str]
) -> None:
    board = _load(CHART / "dashboards" / f"{stem}.json")
    resource_panels = [p for p in _panels(board) if p["title"] in ("CPU by pod", "Memory by pod")]
    assert len(resource_panels) == 2
    for panel in resource_panels:
        expr = _substitute(panel["targets"][0]["expr"])

        def shown(expr: str = expr) -> set[str] | None:
            found = {series["metric"]["pod"] for series in prometheus.query(expr)}
            return found if found == pods else None

        try:
            wait_until(shown, 30, f"{stem} '{panel['title']}' to show {pods}", 0.5)
        except WaitTimeout:
            found = {series["metric"]["pod"] for series in prometheus.query(expr)}
            pytest.fail(f"{stem} '{panel['title']}' shows pods {found}, want {pods} (never {DECOY_POD})")


def test_every_alert_signal_and_recording_rule_returns_data(
    prometheus: PrometheusServer, groups: list[dict[str, Any]]
) -> None:
    queries = []
    for group in groups:
        for rule in group["rules"]:
            if "record" in rule:
                queries.append((f"record {rule['record']}", rule["record"]))
                continue
            threshold = THRESHOLD_LINE.search(rule["expr"])
            assert threshold, f"{rule['alert']}: the last line must be `<comparison> <number>`"
            queries.append((f"alert {rule['alert']}", rule["expr"][: threshold.start()]))
    _wait_for_all(prometheus, queries, "every alert signal and recording rule to return data")


def test_rules_evaluate_cleanly_and_the_traffic_trips_the_right_alerts(
    prometheus: PrometheusServer, groups: list[dict[str, Any]]
) -> None:
    names = {rule["alert"] for rule in _alerts(groups)}
    assert names >= TRIPPED | QUIET

    def states() -> dict[str, str] | None:
        rules = [r for g in prometheus.api("rules")["groups"] for r in g["rules"] if r["type"] == "alerting"]
        if {r["name"] for r in rules} != names or any(r["health"] == "unknown" for r in rules):
            return None
        broken = {r["name"]: r.get("lastError") for r in rules if r["health"] != "ok"}
        assert not broken, f"rules failing to evaluate: {broken}"
        found = {r["name"]: r["state"] for r in rules}
        return found if all(found[name] in ("pending", "firing") for name in TRIPPED) else None

    found = wait_until(states, 30, f"{sorted(TRIPPED)} to be pending or firing", 0.5)
    assert {name: found[name] for name in QUIET} == dict.fromkeys(QUIET, "inactive")


def _write_rules(groups: list[dict[str, Any]], directory: Path) -> Path:
    path = directory / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    return path


def test_promtool_accepts_the_rules(
    prometheus_bin: Path, groups: list[dict[str, Any]], tmp_path: Path
) -> None:
    rules = _write_rules(groups, tmp_path)
    checked = subprocess.run(
        [str(prometheus_bin / "promtool"), "check", "rules", str(rules)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_every_alert_fires_on_bad_series_and_stays_silent_on_good_ones(
    prometheus_bin: Path, groups: list[dict[str, Any]], tmp_path: Path
) -> None:
    unit_tests = Path(__file__).with_name("alerts_test.yaml")
    cases = yaml.safe_load(unit_tests.read_text())["tests"]
    checks = [check for case in cases for check in case["alert_rule_test"]]
    for alert in _alerts(groups):
        outcomes = {bool(c["exp_alerts"]) for c in checks if c["alertname"] == alert["alert"]}
        assert outcomes == {True, False}, f"{alert['alert']} needs a firing and a silent case"

    _write_rules(groups, tmp_path)
    shutil.copy(unit_tests, tmp_path / unit_tests.name)
    tested = subprocess.run(
        [str(prometheus_bin / "promtool"), "test", "rules", unit_tests.name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
