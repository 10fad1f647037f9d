"""The cluster scripts parse and behave as documented, run for real against stand-ins for kubectl,
kind, docker, helm and make (no cluster is available here). shellcheck runs on every script in `make lint`."""

from __future__ import annotations

import hashlib
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from tests.deploy.layout import CLUSTER_SCRIPTS, K8S, PINS, REMOTE_RELEASES, REPO, pinned
from tests.deploy.stand_ins import BASH, recorded_calls, run_cluster_script, stand_in

SCRIPTS = sorted([*CLUSTER_SCRIPTS.glob("*.sh"), REPO / "scripts" / "fetch-skaffold-schema.sh"])
IDS = [str(script.relative_to(REPO)) for script in SCRIPTS]


@pytest.mark.parametrize("script", SCRIPTS, ids=IDS)
def test_script_is_executable_and_parses(script: Path) -> None:
    assert script.stat().st_mode & stat.S_IXUSR
    subprocess.run([BASH, "-n", str(script)], check=True)


def test_up_script_installs_every_pinned_chart_from_the_pins() -> None:
    up = (CLUSTER_SCRIPTS / "up.sh").read_text()
    for prefix in REMOTE_RELEASES:
        assert re.search(rf"^\s*install_chart {prefix}$", up, re.MULTILINE), prefix
    for key, value in pinned().items():
        if key.endswith("_VERSION"):
            assert value not in up, f"up.sh repeats the pin {key}={value}; read it from pins.env"


def _chart_package(tmp_path: Path, inputs: Path) -> subprocess.CompletedProcess[str]:
    return run_cluster_script(
        "chart-package.sh", tmp_path, "TEMPO",
        DISTSUM_CACHE_DIR=str(tmp_path / "cache"), DISTSUM_UPSTREAM_DIR=str(inputs), DISTSUM_HELM="false",
    )  # fmt: skip


def test_chart_package_is_cached_only_when_its_checksum_matches(tmp_path: Path) -> None:
    package = f"tempo-{pinned()['TEMPO_VERSION']}.tgz"
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    (inputs / package).write_bytes(b"a chart package")
    digest = hashlib.sha256(b"a chart package").hexdigest()
    (inputs / "SHA256SUMS").write_text(f"{'0' * 64}  {package}\n")
    refused = _chart_package(tmp_path, inputs)
    assert refused.returncode != 0 and "does not match its checksum" in refused.stderr, refused.stderr
    assert not (tmp_path / "cache" / "charts" / package).exists()

    (inputs / "SHA256SUMS").write_text(f"{digest}  {package}\n")
    cached = _chart_package(tmp_path, inputs)
    assert cached.returncode == 0, cached.stderr
    assert Path(cached.stdout.strip()) == tmp_path / "cache" / "charts" / package
    (inputs / package).unlink()
    assert _chart_package(tmp_path, inputs).stdout == cached.stdout, "the cached copy serves later calls"


def test_chart_package_without_a_copy_or_the_repository_says_what_to_do(tmp_path: Path) -> None:
    missing = _chart_package(tmp_path, tmp_path / "nowhere")
    assert missing.returncode != 0
    assert "set DISTSUM_UPSTREAM_DIR" in missing.stderr and pinned()["TEMPO_REPO"] in missing.stderr


def test_only_chart_repositories_and_cluster_addresses_are_named() -> None:
    allowed_repos = {value for key, value in pinned().items() if key.endswith("_REPO")}
    files = [*K8S.rglob("*.y*ml"), PINS, REPO / "skaffold.yaml", *SCRIPTS]
    for path in files:
        for url in re.findall(r"https?://[^\s\"'`)]+", path.read_text()):
            host = re.sub(r"^https?://([^/:]+).*", r"\1", url)
            in_cluster = host.endswith(".svc.cluster.local") or host == "127.0.0.1"
            assert in_cluster or url in allowed_repos, f"{path.relative_to(REPO)} names {url}"


@pytest.fixture
def fake_bin(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    return bin_dir


KUBECTL = """echo "kubectl $*" >> "$CALLS"
case "$*" in
  *"get secret"*) [[ -n ${SECRET_EXISTS:-} ]] ;;
  *"create secret"*) cat > "${CALLS%/*}/password" ;;
esac"""


def test_prepare_creates_namespaces_and_a_random_grafana_password_off_the_command_line(
    fake_bin: Path,
) -> None:
    stand_in(fake_bin, "kubectl", KUBECTL)
    passwords = []
    for _ in range(2):
        done = run_cluster_script("prepare.sh", fake_bin)
        assert done.returncode == 0, done.stderr
        passwords.append((fake_bin.parent / "password").read_text())
    calls = recorded_calls(fake_bin)
    assert f"kubectl --context kind-distsum apply -f {K8S / 'kind' / 'namespaces.yaml'}" in calls
    created = [call for call in calls if "create secret generic grafana-admin" in call]
    assert len(created) == 2
    assert all("admin-password=/dev/stdin" in call for call in created)
    assert all(password not in call for password in passwords for call in calls)
    assert passwords[0] != passwords[1] and all(len(password) >= 32 for password in passwords)


def test_prepare_keeps_an_existing_grafana_secret(fake_bin: Path) -> None:
    stand_in(fake_bin, "kubectl", KUBECTL)
    done = run_cluster_script("prepare.sh", fake_bin, SECRET_EXISTS="1", KUBE_CONTEXT="other")
    assert done.returncode == 0, done.stderr
    assert not any("create secret" in call for call in recorded_calls(fake_bin))
    assert all(call.startswith("kubectl --context other ") for call in recorded_calls(fake_bin))


def test_prepare_without_observability_creates_no_secret(fake_bin: Path) -> None:
    stand_in(fake_bin, "kubectl", KUBECTL)
    done = run_cluster_script("prepare.sh", fake_bin, "--no-observability")
    assert done.returncode == 0, done.stderr
    assert [call.split()[3] for call in recorded_calls(fake_bin)] == ["apply"]


def test_up_names_a_missing_make(fake_bin: Path) -> None:
    for tool in ("dirname", "sed", "grep"):
        found = shutil.which(tool)
        assert found
        (fake_bin / tool).symlink_to(found)
    done = run_cluster_script("up.sh", fake_bin, path_rest="")
    assert done.returncode == 1
    assert "missing tool(s): make" in done.stderr


def test_up_installs_nothing_when_the_cluster_cannot_be_made(fake_bin: Path) -> None:
    recorder = 'echo "${0##*/} $*" >> "$CALLS"'
    for tool in ("helm", "kubectl", "make"):
        stand_in(fake_bin, tool, recorder)
    stand_in(fake_bin, "docker", 'case "$*" in "info --format"*) echo runc-nosysres ;; esac')
    stand_in(fake_bin, "kind", f"{recorder}; [[ $1 != create ]]")
    done = run_cluster_script(
        "up.sh",
        fake_bin,
        DISTSUM_CLUSTER_PATH="online",
        **{f"DISTSUM_{tool.upper()}": str(fake_bin / tool) for tool in ("kind", "helm", "kubectl")},
    )
    assert done.returncode == 1
    assert "kind create cluster failed" in done.stderr
    assert [call.split()[0] for call in recorded_calls(fake_bin)] == ["kind", "kind"], (
        "nothing may be installed when the cluster could not be made"
    )


def test_up_rejects_unknown_arguments(fake_bin: Path) -> None:
    done = run_cluster_script("up.sh", fake_bin, "--no-observabilty")
    assert done.returncode == 1
    assert "unknown argument '--no-observabilty'" in done.stderr


@pytest.mark.parametrize(("clusters", "deleted"), [("other\ndistsum", True), ("other", False)])
def test_down_deletes_only_the_named_cluster(fake_bin: Path, clusters: str, deleted: bool) -> None:
    stand_in(fake_bin, "kind", f'echo "kind $*" >> "$CALLS"; [[ $1 == get ]] && printf "{clusters}\\n"; true')
    done = run_cluster_script("kind.sh", fake_bin, "down", "distsum", DISTSUM_KIND=str(fake_bin / "kind"))
    assert done.returncode == 0, done.stderr
    assert ("kind delete cluster --name distsum" in recorded_calls(fake_bin)) is deleted
