"""The k6 load test (loadtest/): the script types against the pinned k6 definitions (k6 itself cannot run
here), the chart renders a valid, restricted Job aimed at the app chart's Services with the client
certificate and pod label the app chart gives its `loadtest` identity, and `make loadtest` exits with
k6's status and reads the ledger over mutual TLS, run against a stand-in kubectl."""

from __future__ import annotations

import base64
import importlib.util
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import NameOID

from localstack.certificates import CertificateAuthority
from tests.chart.chart_tools import (
    Rendered,
    Values,
    env_of,
    helm_binary,
    kube_score_binary,
    kube_version,
    kubeconform,
    only_container,
    pod_spec,
)
from tests.chart.test_kube_score import DECIDED_AGAINST, IGNORE_CPU_LIMIT
from tests.deploy.layout import APP_CHART, REPO, pinned
from tests.deploy.stand_ins import BASH, recorded_calls, stand_in

LOADTEST = REPO / "loadtest"
SCRIPT = LOADTEST / "script.js"
K6_CHECK = REPO / "scripts" / "k6-check.sh"
TOOL_MISSING = 77  # k6-check.sh's exit status when npm is missing (any other failure is the check's)
# The app chart's tests render their release under this name (tests/chart/chart_tools.py).
APP_RELEASE = "distsum"

Manifest = dict[str, Any]


def k6_check(*args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(K6_CHECK), *args], capture_output=True, text=True, check=False, cwd=REPO)
    if done.returncode == TOOL_MISSING:
        pytest.skip(f"npm is not installed and typescript/@types/k6 are not cached: {done.stderr.strip()}")
    return done


def render(*sets: str) -> list[Manifest]:
    argv = [str(helm_binary()), "template", "distsum-loadtest", str(LOADTEST), "--namespace", "distsum"]
    argv += [arg for assignment in (f"target.release={APP_RELEASE}", *sets) for arg in ("--set", assignment)]
    done = subprocess.run(argv, capture_output=True, text=True, check=False, cwd=REPO)
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def one(objects: list[Manifest], kind: str) -> Manifest:
    (found,) = [obj for obj in objects if obj["kind"] == kind]
    return found


def k6_container(objects: list[Manifest]) -> Manifest:
    (container,) = one(objects, "Job")["spec"]["template"]["spec"]["containers"]
    assert isinstance(container, dict)
    return container


def k6_pod(objects: list[Manifest]) -> Manifest:
    pod: Manifest = one(objects, "Job")["spec"]["template"]
    return pod


@pytest.fixture(scope="module")
def rendered() -> list[Manifest]:
    return render()


def test_the_script_types_against_the_pinned_k6_definitions() -> None:
    done = k6_check()
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_type_check_fails_on_an_api_k6_does_not_have(tmp_path: Path) -> None:
    shutil.copy(LOADTEST / "tsconfig.json", tmp_path)
    script = SCRIPT.read_text()
    assert "client.invoke(" in script
    (tmp_path / "script.js").write_text(script.replace("client.invoke(", "client.invokeUnary(", 1))
    done = k6_check(str(tmp_path / "tsconfig.json"))
    assert done.returncode != 0
    assert "Property 'invokeUnary' does not exist on type 'Client'" in done.stdout


def test_the_image_is_official_k6_of_the_typed_release(rendered: list[Manifest]) -> None:
    chart = yaml.safe_load((LOADTEST / "Chart.yaml").read_text())
    tag = chart["appVersion"]
    assert k6_container(rendered)["image"] == f"grafana/k6:{tag}"
    types_version = pinned()["K6_TYPES_VERSION"]
    assert tag.split(".")[:2] == types_version.split(".")[:2], (
        "the image and @types/k6 are different k6 releases"
    )


def test_the_chart_lints_and_every_object_is_valid(rendered: list[Manifest], tmp_path: Path) -> None:
    lint = subprocess.run(
        [str(helm_binary()), "lint", "--strict", str(LOADTEST)], capture_output=True, text=True, check=False
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
    manifest = tmp_path / "loadtest.yaml"
    manifest.write_text(yaml.safe_dump_all(rendered))
    verdicts = kubeconform([manifest])[str(manifest)]
    assert {verdict.kind for verdict in verdicts} == {"ConfigMap", "Job", "NetworkPolicy"}
    assert all(verdict.status == "statusValid" for verdict in verdicts), verdicts


def test_kube_score_finds_nothing_the_app_chart_has_not_decided(
    rendered: list[Manifest], tmp_path: Path
) -> None:
    manifest = tmp_path / "loadtest.yaml"
    manifest.write_text(yaml.safe_dump_all(rendered))
    major_minor = ".".join(kube_version().removeprefix("v").split(".")[:2])
    argv = [str(kube_score_binary()), "score", "--output-format", "ci", IGNORE_CPU_LIMIT,
            "--kubernetes-version", f"v{major_minor}"]  # fmt: skip
    for check in sorted(DECIDED_AGAINST):
        argv += ["--ignore-test", check]
    result = subprocess.run([*argv, str(manifest)], capture_output=True, text=True, check=False, cwd=REPO)
    findings = [line for line in result.stdout.splitlines() if line.startswith(("[CRITICAL]", "[WARNING]"))]
    assert not findings, "\n".join(findings)


def test_the_job_meets_the_restricted_pod_security_standard(rendered: list[Manifest]) -> None:
    job = one(rendered, "Job")
    pod = job["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] > 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    assert all(set(volume) & {"configMap", "emptyDir", "secret"} for volume in pod["volumes"])
    context = k6_container(rendered)["securityContext"]
    assert context["allowPrivilegeEscalation"] is False
    assert context["readOnlyRootFilesystem"] is True
    assert context["capabilities"] == {"drop": ["ALL"]}
    # One run, one verdict: a failed run is not repeated with new ids.
    assert job["spec"]["backoffLimit"] == 0
    assert pod["restartPolicy"] == "Never"


def test_the_configmap_holds_exactly_the_script_that_k6_runs(rendered: list[Manifest]) -> None:
    config_map = one(rendered, "ConfigMap")
    assert config_map["data"] == {"script.js": SCRIPT.read_text()}
    pod = one(rendered, "Job")["spec"]["template"]["spec"]
    (volume,) = [volume for volume in pod["volumes"] if "configMap" in volume]
    assert volume["configMap"]["name"] == config_map["metadata"]["name"]
    container = k6_container(rendered)
    (mount,) = [mount for mount in container["volumeMounts"] if mount["name"] == volume["name"]]
    assert container["args"] == ["run", f"{mount['mountPath']}/script.js"]


def test_the_targets_are_the_app_charts_services_and_pods() -> None:
    app = Rendered.of()
    services = {
        service["metadata"]["labels"]["app.kubernetes.io/component"]: service
        for service in app.of_kind("Service")
    }
    env = env_of(k6_container(render()))

    def port(component: str, name: str) -> int:
        (found,) = [p["port"] for p in services[component]["spec"]["ports"] if p["name"] == name]
        return int(found)

    assert env["SUM_TARGET"] == f"{services['sum']['metadata']['name']}:{port('sum', 'grpc')}"
    assert env["LEDGER_URL"] == f"https://{services['ledger']['metadata']['name']}:{port('ledger', 'http')}"
    policy = one(render(), "NetworkPolicy")
    egress = {rule["ports"][0]["port"]: rule["to"][0] for rule in policy["spec"]["egress"]}
    for component, port_name in (("sum", "grpc"), ("ledger", "http")):
        workload = app.one("Deployment" if component == "sum" else "StatefulSet", component)
        pod_labels = workload["spec"]["template"]["metadata"]["labels"]
        assert egress[port_name]["podSelector"]["matchLabels"].items() <= pod_labels.items()
        container_ports = {
            p["name"] for c in workload["spec"]["template"]["spec"]["containers"] for p in c["ports"]
        }
        assert port_name in container_ports


def test_the_load_shape_and_thresholds_are_values_the_script_reads() -> None:
    env = env_of(
        k6_container(render("load.peakVUs=77", "load.rampUp=2m", "load.hold=10m", "thresholds.grpcP99Ms=750"))
    )
    assert (env["PEAK_VUS"], env["RAMP_UP"], env["HOLD"], env["GRPC_P99_MS"]) == ("77", "2m", "10m", "750")
    read = set(re.findall(r'env(?:Text|Number|Integer)\("([A-Z0-9_]+)"', SCRIPT.read_text()))
    # Read by k6, not the script: SSL_CERT_FILE names Go's system roots, which k6's HTTP client trusts.
    assert set(env) - {"K6_NO_USAGE_REPORT", "SSL_CERT_FILE"} == read


def _secret_pem(secret: Manifest, key: str) -> bytes:
    return base64.b64decode(secret["data"][key])


def _dns_names(certificate: x509.Certificate) -> list[str]:
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return names.get_values_for_type(x509.DNSName)


@pytest.mark.parametrize(
    ("app_sets", "loadtest_sets"),
    [((), ()), (("fullnameOverride=shop",), ("target.fullname=shop",))],
    ids=["derived-fullname", "fullname-override"],
)
def test_with_tls_the_job_presents_the_client_certificate_the_app_issues_to_it(
    app_sets: tuple[str, ...], loadtest_sets: tuple[str, ...]
) -> None:
    # values-kind.yaml is what `make cluster-up` and skaffold install, and it names the loadtest client.
    app = Rendered.of(Values(files=(APP_CHART / "values-kind.yaml",), sets=app_sets))
    loadtest = render(*loadtest_sets)
    pod = k6_pod(loadtest)
    container = k6_container(loadtest)
    env = env_of(container)

    (volume,) = [volume for volume in pod["spec"]["volumes"] if "secret" in volume]
    secret_name = volume["secret"]["secretName"]
    secrets = {secret["metadata"]["name"]: secret for secret in app.of_kind("Secret")}
    assert secret_name in secrets, f"the app chart issues no Secret {secret_name}: {sorted(secrets)}"
    client = x509.load_pem_x509_certificate(_secret_pem(secrets[secret_name], "tls.crt"))
    (common_name,) = client.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    assert common_name.value == "loadtest"
    assert volume["secret"]["defaultMode"] == 0o440
    assert {item["key"] for item in volume["secret"]["items"]} == {"tls.crt", "tls.key", "ca.crt"}
    # The files are 0440: readable by the k6 user only through the pod's fsGroup.
    assert pod["spec"]["securityContext"]["fsGroup"] == pod["spec"]["securityContext"]["runAsGroup"]
    (mount,) = [mount for mount in container["volumeMounts"] if mount["name"] == volume["name"]]
    assert mount["readOnly"] is True
    assert env["TLS_DIR"] == mount["mountPath"]
    opened = set(re.findall(r"open\(`\$\{TLS_DIR\}/([^`]+)`\)", SCRIPT.read_text()))
    assert opened == {item["path"] for item in volume["secret"]["items"]}
    assert env["SSL_CERT_FILE"] == f"{mount['mountPath']}/ca.crt"

    assert env["LEDGER_URL"].startswith("https://")
    label = {"distributed-sum/client": "loadtest"}
    assert label.items() <= pod["metadata"]["labels"].items()
    servers = (
        ("sum", "Deployment", "grpc", env["SUM_TARGET"]),
        ("ledger", "StatefulSet", "http", env["LEDGER_URL"].removeprefix("https://")),
    )
    for component, workload_kind, port_name, address in servers:
        workload = app.one(workload_kind, component)
        # k6 verifies the server's certificate against the Secret's CA and the host it dials.
        (server_volume,) = [volume for volume in pod_spec(workload)["volumes"] if volume["name"] == "tls"]
        server = secrets[server_volume["secret"]["secretName"]]
        assert _secret_pem(server, "ca.crt") == _secret_pem(secrets[secret_name], "ca.crt")
        server_certificate = x509.load_pem_x509_certificate(_secret_pem(server, "tls.crt"))
        assert address.rsplit(":", 1)[0] in _dns_names(server_certificate)
        # The app admits the pod's label to the API port, and its identity to the API.
        ingress = app.one("NetworkPolicy", component)["spec"]["ingress"]
        to_port = [rule for rule in ingress if any(port["port"] == port_name for port in rule["ports"])]
        peers = [peer for rule in to_port for peer in rule["from"]]
        assert {"podSelector": {"matchLabels": label}} in peers
        assert "loadtest" in env_of(only_container(workload))["TLS_ALLOWED_CLIENTS"].split(",")


def test_without_tls_k6_speaks_plaintext_and_still_carries_its_client_label() -> None:
    loadtest = render("target.tls.enabled=false")
    pod = k6_pod(loadtest)
    container = k6_container(loadtest)
    env = env_of(container)
    assert env["LEDGER_URL"].startswith("http://")
    assert not {"TLS_DIR", "SSL_CERT_FILE"} & set(env)
    assert not [volume for volume in pod["spec"]["volumes"] if "secret" in volume]
    assert {mount["name"] for mount in container["volumeMounts"]} == {"script", "tmp"}
    # A mesh does mutual TLS, but the app's NetworkPolicies still admit only its tls.clients' pods.
    assert pod["metadata"]["labels"]["distributed-sum/client"] == "loadtest"


@pytest.mark.parametrize(
    "assignment",
    ["load.peakVUs=0", "load.hold=forever", "load.mix.sideways=1", "target.tls.client=Not_A_Label"],
)
def test_the_schema_rejects_bad_values(assignment: str) -> None:
    argv = [str(helm_binary()), "template", "x", str(LOADTEST), "--set", assignment]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert done.returncode != 0 and "values don't meet the specifications" in done.stderr, done.stderr


# k6's result line: the ledger held total 100 in 10 events before; k6 had 3 ids acknowledged, sum 12.
RESULT = (
    'distsum-loadtest-result {"acknowledged_ids":3,"acknowledged_sum":"12","unresolved_ids":0,'
    '"unresolved_sum":"0","before":{"total":"100","count":10},"expected_total":"112","expected_count":13}'
)
KUBECTL = f"""echo "kubectl $*" >> "$CALLS"
case "$*" in
  *"config current-context"*) echo kind-test ;;
  *" apply "*) cat > "${{CALLS%/*}}/applied.yaml" ;;
  *" logs "*) printf 'k6 summary: acknowledged distinct ids: 3, their sum: 12\\n%s\\n' '{RESULT}' ;;
  *"get job"*secretName*) echo "$CLIENT_SECRET" ;;
  *"get job"*) echo "$JOB_STATUS" ;;
  *"get pods"*) echo "$EXIT_CODE" ;;
  *"get service"*) echo "distributed-sum-ledger 8080" ;;
  *"get secret $CLIENT_SECRET "*'ca\\.crt'*) base64 < "$CLIENT_FILES/ca.crt" ;;
  *"get secret $CLIENT_SECRET "*'tls\\.crt'*) base64 < "$CLIENT_FILES/tls.crt" ;;
  *"get secret $CLIENT_SECRET "*'tls\\.key'*) base64 < "$CLIENT_FILES/tls.key" ;;
  *" port-forward "*) exec python3 -c '
import http.server, os, ssl
class Ledger(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = os.environ["LEDGER_TOTAL"].encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
server = http.server.HTTPServer(("127.0.0.1", 0), Ledger)
files = os.environ.get("SERVER_FILES")
if files:
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(files + "/tls.crt", files + "/tls.key")
    tls.load_verify_locations(files + "/ca.crt")
    tls.verify_mode = ssl.CERT_REQUIRED
    server.socket = tls.wrap_socket(server.socket, server_side=True)
print(f"Forwarding from 127.0.0.1:{{server.server_port}} -> 8080", flush=True)
server.serve_forever()
' ;;
esac"""


AGREES = '{"total": "112", "count": 13}'
DIFFERS = '{"total": "124", "count": 14}'  # an acknowledged event counted twice


def make_loadtest(
    tmp_path: Path, job_status: str, exit_code: str, ledger: str, **env_extra: str
) -> subprocess.CompletedProcess[str]:
    """scripts/loadtest.sh against the stand-in kubectl in tmp_path/bin; the ledger answers `ledger`."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stand_in(bin_dir, "kubectl", KUBECTL)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "CALLS": str(tmp_path / "calls"),
        "HELM": str(helm_binary()),
        "JOB_STATUS": job_status,
        "EXIT_CODE": exit_code,
        "LOADTEST_NAMESPACE": "load-ns",
        "LOADTEST_RELEASE": APP_RELEASE,
        "LOADTEST_SET": "load.peakVUs=5",
        "LOADTEST_SETTLE": "3",
        "LEDGER_TOTAL": ledger,
        **env_extra,
    }
    argv = [BASH, str(REPO / "scripts" / "loadtest.sh")]
    return subprocess.run(argv, text=True, capture_output=True, env=env, timeout=60, check=False)


@pytest.mark.parametrize(
    ("job_status", "exit_code", "ledger", "expected_exit"),
    [("1/", "0", AGREES, 0), ("/1", "99", AGREES, 99), ("1/", "0", DIFFERS, 1), ("/1", "99", DIFFERS, 99)],
)
def test_make_loadtest_replaces_the_job_and_exits_like_k6_or_on_a_wrong_total(
    tmp_path: Path, job_status: str, exit_code: str, ledger: str, expected_exit: int
) -> None:
    done = make_loadtest(tmp_path, job_status, exit_code, ledger)
    assert done.returncode == expected_exit, done.stderr
    assert "acknowledged distinct ids: 3" in done.stdout
    assert ("totals agree" if ledger == AGREES else "TOTALS DIFFER") in done.stderr, done.stderr
    calls = recorded_calls(tmp_path / "bin")
    delete = next(index for index, call in enumerate(calls) if " delete job distsum-loadtest" in call)
    apply = next(index for index, call in enumerate(calls) if " apply " in call)
    assert delete < apply and "--cascade=foreground" in calls[delete]
    assert all("--namespace load-ns" in call for call in calls if "current-context" not in call)
    applied = [doc for doc in yaml.safe_load_all((tmp_path / "applied.yaml").read_text()) if doc]
    assert env_of(k6_container(applied))["PEAK_VUS"] == "5"


@pytest.mark.parametrize("same_ca", [True, False], ids=["the-app-ca", "another-ca"])
def test_make_loadtest_reads_the_ledger_over_mutual_tls_with_the_jobs_certificate(
    tmp_path: Path, same_ca: bool
) -> None:
    app_ca = CertificateAuthority("app CA")
    server_ca = app_ca if same_ca else CertificateAuthority("another CA")
    pairs = {
        # A port-forward client dials 127.0.0.1, which the chart's server certificates name.
        "server": server_ca.issue("ledger", ips=["127.0.0.1"], server=True),
        "client": app_ca.issue("loadtest", client=True),
    }
    for name, pair in pairs.items():
        pair.write(tmp_path / name, "tls")
        # Both sides trust the app's CA: the ledger for the client's certificate, the client for the ledger's.
        (tmp_path / name / "ca.crt").write_bytes(app_ca.cert_pem)
    secret = f"{APP_RELEASE}-distributed-sum-client-loadtest"
    done = make_loadtest(
        tmp_path, "1/", "0", AGREES,
        CLIENT_SECRET=secret, CLIENT_FILES=str(tmp_path / "client"), SERVER_FILES=str(tmp_path / "server"),
    )  # fmt: skip
    if same_ca:
        assert done.returncode == 0, done.stderr
        assert "totals agree" in done.stderr
    else:
        assert done.returncode == 1 and "did not answer" in done.stderr, done.stderr
    calls = recorded_calls(tmp_path / "bin")
    assert sum(f" get secret {secret} " in call for call in calls) == 3


def _verdict_module() -> Any:
    path = REPO / "scripts" / "loadtest_verdict.py"
    spec = importlib.util.spec_from_file_location("loadtest_verdict", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("unresolved_sum", "total", "count", "ok"),
    [
        ("3", "112", 13, True),  # the unacknowledged id was not counted
        ("3", "115", 14, True),  # it was
        ("-7", "105", 14, True),
        ("3", "112", 15, False),  # one event more than could be
        ("3", "120", 14, False),  # a total no outcome explains
        ("-7", "115", 14, False),
    ],
)
def test_ids_never_acknowledged_may_or_may_not_be_counted(
    unresolved_sum: str, total: str, count: int, ok: bool
) -> None:
    result = {
        "expected_total": "112",
        "expected_count": 13,
        "unresolved_ids": 1,
        "unresolved_sum": unresolved_sum,
    }
    assert _verdict_module().verdict(result, {"total": total, "count": count})[0] is ok
