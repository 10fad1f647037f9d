"""skaffold.yaml is valid for its apiVersion and deploys exactly the pinned charts, in order."""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from jsonschema.exceptions import best_match

from tests.deploy.layout import (
    APP_CHART,
    OBSERVABILITY,
    REMOTE_RELEASES,
    REPO,
    pinned,
    skaffold,
    skaffold_sanitized,
)
from tests.e2e import secured_kafka

# The chart values that carry the built images (the app chart's interface).
IMAGE_VALUES = {
    "distributed-sum/sum-svc": ("sum.image.repository", "sum.image.tag"),
    "distributed-sum/ledger-svc": ("ledger.image.repository", "ledger.image.tag"),
}
# values-kind.yaml turns these off; the full pipeline turns them on, the minimal profile off.
MONITORING_KEYS = (
    "monitoring.serviceMonitor.enabled",
    "monitoring.prometheusRule.enabled",
    "monitoring.dashboards.enabled",
    "tracing.enabled",
)


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    if shutil.which("go") is None:
        pytest.skip("Go is not installed: skaffold's JSON schema comes from its Go module")
    fetched = subprocess.run(
        [str(REPO / "scripts" / "fetch-skaffold-schema.sh")],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        env=os.environ,
    )
    assert fetched.returncode == 0, fetched.stderr
    loaded: dict[str, Any] = json.loads(Path(fetched.stdout.strip().splitlines()[-1]).read_text())
    return loaded


def _errors(schema: dict[str, Any], config: dict[str, Any]) -> list[str]:
    # Skaffold's schema nests everything in anyOf, whose own message names no field: report the most
    # specific underlying error of each failure instead.
    validator = jsonschema.Draft7Validator(schema)
    errors = [best_match([error]) or error for error in validator.iter_errors(config)]
    return [f"{'/'.join(map(str, error.absolute_path))}: {error.message}" for error in errors]


def test_config_validates_against_the_schema_of_its_api_version(schema: dict[str, Any]) -> None:
    config = skaffold()
    fetcher = (REPO / "scripts" / "fetch-skaffold-schema.sh").read_text()
    version = re.search(r"^SCHEMA_VERSION=(\S+)$", fetcher, re.MULTILINE)
    assert version and config["apiVersion"] == f"skaffold/{version.group(1)}"
    assert _errors(schema, config) == []


def test_the_schema_rejects_a_misspelt_release_field(schema: dict[str, Any]) -> None:
    broken = copy.deepcopy(skaffold())
    broken["deploy"]["helm"]["releases"][0]["valueFiles"] = ["typo.yaml"]
    assert _errors(schema, broken)


def _releases(deploy: dict[str, Any]) -> list[dict[str, Any]]:
    releases: list[dict[str, Any]] = deploy["helm"]["releases"]
    return releases


def _profile(name: str) -> dict[str, Any]:
    profiles: list[dict[str, Any]] = skaffold()["profiles"]
    (profile,) = [profile for profile in profiles if profile["name"] == name]
    return profile


def _assert_pinned(release: dict[str, Any], prefix: str) -> None:
    pins = pinned()
    assert release["name"] == pins[f"{prefix}_RELEASE"]
    assert release["remoteChart"] == pins[f"{prefix}_CHART"]
    assert release["repo"] == pins[f"{prefix}_REPO"]
    assert release["version"] == pins[f"{prefix}_VERSION"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", release["version"]), "pin an exact chart version"
    assert release["namespace"] == pins[f"{prefix}_NAMESPACE"]
    (values_file,) = release["valuesFiles"]
    assert (REPO / values_file).parent == OBSERVABILITY and (REPO / values_file).is_file()


def _assert_app(release: dict[str, Any]) -> None:
    pins = pinned()
    assert release["name"] == pins["APP_RELEASE"]
    assert release["chartPath"] == pins["APP_CHART"]
    assert release["namespace"] == pins["APP_NAMESPACE"]
    assert release["valuesFiles"] == [pins["APP_VALUES"]]


def test_default_pipeline_installs_every_pinned_chart_then_the_app() -> None:
    releases = _releases(skaffold()["deploy"])
    assert len(releases) == len(REMOTE_RELEASES) + 1
    for release, prefix in zip(releases, REMOTE_RELEASES, strict=False):
        _assert_pinned(release, prefix)
        assert release["wait"] is True, "later releases need this one's CRDs and services"
    _assert_app(releases[-1])
    assert releases[-1]["setValues"] == dict.fromkeys(MONITORING_KEYS, True)


@pytest.mark.parametrize("deploy", ["default", "minimal"])
def test_helm_waits_as_long_as_the_cluster_script(deploy: str) -> None:
    helm = (skaffold()["deploy"] if deploy == "default" else _profile(deploy)["deploy"])["helm"]
    timeout = re.search(r"^helm_timeout=(\S+)$", (REPO / "scripts/cluster/up.sh").read_text(), re.MULTILINE)
    assert timeout is not None
    assert helm["flags"] == {"install": [f"--timeout={timeout[1]}"], "upgrade": [f"--timeout={timeout[1]}"]}


def test_minimal_profile_installs_only_the_operator_and_the_app_without_monitoring() -> None:
    deploy = _profile("minimal")["deploy"]
    operator, app = _releases(deploy)
    _assert_pinned(operator, "STRIMZI")
    _assert_app(app)
    assert app["setValues"] == dict.fromkeys(MONITORING_KEYS, False)
    (hook,) = deploy["helm"]["hooks"]["before"]
    assert hook["host"]["command"] == ["scripts/cluster/prepare.sh", "--no-observability"]


@pytest.mark.parametrize("deploy", ["default", "minimal"])
def test_app_release_takes_the_built_images(deploy: str) -> None:
    config = skaffold()
    app = _releases(config["deploy"] if deploy == "default" else _profile(deploy)["deploy"])[-1]
    artifacts = {artifact["image"]: artifact for artifact in config["build"]["artifacts"]}
    assert set(artifacts) == set(IMAGE_VALUES)
    expected = {}
    for image, (repository_key, tag_key) in IMAGE_VALUES.items():
        expected[repository_key] = f"{{{{.IMAGE_REPO_{skaffold_sanitized(image)}}}}}"
        expected[tag_key] = f"{{{{.IMAGE_TAG_{skaffold_sanitized(image)}}}}}"
    assert app["setValueTemplates"] == expected


def test_images_are_built_locally_and_never_pushed() -> None:
    config = skaffold()
    assert config["build"]["local"]["push"] is False
    assert config["deploy"]["kubeContext"] == _profile("minimal")["deploy"]["kubeContext"] == "kind-distsum"
    dockerfiles = {
        artifact["image"]: artifact["docker"]["dockerfile"] for artifact in config["build"]["artifacts"]
    }
    assert dockerfiles == {
        "distributed-sum/sum-svc": "Dockerfile.sum",
        "distributed-sum/ledger-svc": "Dockerfile.ledger",
    }


def test_deploy_hook_prepares_namespaces_and_the_grafana_secret() -> None:
    (hook,) = skaffold()["deploy"]["helm"]["hooks"]["before"]
    script = REPO / hook["host"]["command"][0]
    assert script.is_file() and os.access(script, os.X_OK)


def test_files_owned_by_the_chart_and_image_work_exist() -> None:
    wanted = [REPO / "Dockerfile.sum", REPO / "Dockerfile.ledger", APP_CHART / "Chart.yaml"]
    wanted.append(REPO / pinned()["APP_VALUES"])
    missing = [str(path.relative_to(REPO)) for path in wanted if not path.exists()]
    assert missing == []


# The offline profile (machines without a container registry): what scripts/docker/build-images.sh hands
# to the build there, expressed in skaffold's terms.
def _offline_artifacts() -> dict[str, dict[str, Any]]:
    build = _profile("offline")["build"]
    return {artifact["image"]: artifact for artifact in build["artifacts"]}


def test_default_build_is_the_one_for_users_with_internet() -> None:
    for artifact in skaffold()["build"]["artifacts"]:
        assert set(artifact["docker"]) == {"dockerfile"}, "the public base image and no local settings"


def test_offline_profile_is_activated_by_its_name_or_an_env_variable() -> None:
    profile = _profile("offline")
    assert profile["activation"] == [{"env": "DISTSUM_OFFLINE=1"}]
    assert set(profile) == {"name", "activation", "build"}, "it changes how images are built, nothing else"
    assert profile["build"]["local"] == skaffold()["build"]["local"]


def test_offline_profile_builds_the_same_images_from_the_same_dockerfiles() -> None:
    default = {artifact["image"]: artifact for artifact in skaffold()["build"]["artifacts"]}
    offline = _offline_artifacts()
    assert set(offline) == set(default)
    for image, artifact in offline.items():
        assert artifact["context"] == default[image]["context"]
        assert artifact["docker"]["dockerfile"] == default[image]["docker"]["dockerfile"]


def test_offline_profile_passes_the_build_arguments_of_make_images() -> None:
    script = (REPO / "offline/base-image.sh").read_text()
    local_base = re.search(r'^local_tag="\$\{LOCAL_BASE_IMAGE:-([^}]+)\}"$', script, re.MULTILINE)
    assert local_base, "base-image.sh names its local base image"
    version = re.search(r'^version = "([^"]+)"$', (REPO / "pyproject.toml").read_text(), re.MULTILINE)
    assert version
    for image, artifact in _offline_artifacts().items():
        docker = artifact["docker"]
        args = docker["buildArgs"]
        assert args["BASE_IMAGE"] == f'{{{{default "{local_base[1]}" .LOCAL_BASE_IMAGE}}}}', image
        assert args["VERSION"] == version[1], "keep in step with pyproject.toml"
        assert args["REVISION"] == "{{.IMAGE_TAG}}"
        assert docker["network"] == "host", "the engine may have no bridge (DISTSUM_BUILD_NETWORK)"
        dockerfile = (REPO / docker["dockerfile"]).read_text()
        for arg in args:
            declared = re.search(rf"^ARG {arg}\b", dockerfile, re.MULTILINE)
            assert declared, f"{docker['dockerfile']} has no ARG {arg}"


def test_offline_profile_hands_pip_its_settings_of_this_machine() -> None:
    for artifact in _offline_artifacts().values():
        docker = artifact["docker"]
        secret, *pip_args = docker["cliFlags"]
        assert secret == '--secret=id=pip_cert,src={{default "/etc/ssl/certs/ca-certificates.crt" .PIP_CERT}}'
        assert "--mount=type=secret,id=pip_cert" in (REPO / docker["dockerfile"]).read_text()
        # Without a value docker reads them from the environment and skips them where unset.
        assert pip_args == ["--build-arg=PIP_INDEX_URL", "--build-arg=PIP_EXTRA_INDEX_URL"]


def test_external_kafka_profile_deploys_only_the_app_with_the_e2e_values() -> None:
    deploy = _profile("external-kafka")["deploy"]
    (app,) = _releases(deploy)
    pins = pinned()
    assert (app["name"], app["chartPath"]) == (pins["APP_RELEASE"], pins["APP_CHART"])
    assert app["valuesFiles"] == [
        "charts/distributed-sum/values-external-kafka.yaml",
        "charts/distributed-sum/values-minimal.yaml",
    ]
    templates = dict(app["setValueTemplates"])
    assert templates.pop("kafka.externalBootstrapServers") == "{{.DISTSUM_KAFKA_BOOTSTRAP}}"
    for image, (repository_key, tag_key) in IMAGE_VALUES.items():
        assert templates.pop(repository_key) == f"{{{{.IMAGE_REPO_{skaffold_sanitized(image)}}}}}"
        assert templates.pop(tag_key) == f"{{{{.IMAGE_TAG_{skaffold_sanitized(image)}}}}}"
    assert templates == {}
    assert app["setValues"] == {
        "networkPolicy.externalKafka.to": "null",
        "kafka.authentication": "tls",
        "networkPolicy.externalKafka.ports[0].port": secured_kafka.PORT,
    }
    assert deploy["kubeContext"] == "kind-distsum", "never whatever cluster happens to be current"


def test_the_e2e_kafka_makes_the_secrets_the_external_kafka_values_name() -> None:
    values = yaml.safe_load((REPO / "charts/distributed-sum/values-external-kafka.yaml").read_text())
    external = values["kafka"]["external"]
    assert external["caSecret"] == {"name": secured_kafka.CA_SECRET, "key": "ca.crt"}
    assert {name: external[name]["secretName"] for name in ("sum", "ledger")} == secured_kafka.USER_SECRETS
