"""Mutual TLS in the chart: where certificates come from, who may call, and what the pods mount."""

from __future__ import annotations

import base64
import ipaddress

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.chart.chart_tools import Manifest, Rendered, env_of, only_container, pod_spec

FULLNAME = "distsum-distributed-sum"
SERVICE_NAMES = {
    "sum": f"{FULLNAME}-sum",
    "ledger": f"{FULLNAME}-ledger",
}
WORKLOADS = {"sum": "Deployment", "ledger": "StatefulSet"}


def tls_secret_of(spec: Manifest) -> str | None:
    """The Secret mounted at /etc/distsum/tls, or None."""
    (container,) = spec["containers"]
    mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
    if "/etc/distsum/tls" not in mounts:
        return None
    (volume,) = [v for v in spec["volumes"] if v["name"] == mounts["/etc/distsum/tls"]]
    secret: str = volume["secret"]["secretName"]
    return secret


def secret_data(rendered: Rendered, name: str) -> dict[str, bytes]:
    (secret,) = [s for s in rendered.of_kind("Secret") if s["metadata"]["name"] == name]
    return {key: base64.b64decode(value) for key, value in secret["data"].items()}


@pytest.mark.parametrize("component", WORKLOADS)
def test_tls_is_on_by_default_with_mutual_tls(defaults: Rendered, component: str) -> None:
    workload = defaults.one(WORKLOADS[component], component)
    env = env_of(only_container(workload))
    assert env["TLS_ENABLED"] == "true"
    assert env["TLS_CLIENT_AUTH"] == "true"
    assert env["TLS_ALLOWED_CLIENTS"] == "operator"
    assert tls_secret_of(pod_spec(workload)) == f"{FULLNAME}-{component}-tls"
    (volume,) = [v for v in pod_spec(workload)["volumes"] if v["name"] == "tls"]
    # No subPath: the kubelet updates a Secret volume in place, which is how a rotation reaches the pod.
    assert volume["secret"]["defaultMode"] == 0o440
    assert all("subPath" not in m for m in only_container(workload)["volumeMounts"])


def test_the_generated_certificates_chain_to_the_generated_ca(defaults: Rendered) -> None:
    ca = x509.load_pem_x509_certificate(secret_data(defaults, f"{FULLNAME}-ca")["tls.crt"])
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    for component, service in SERVICE_NAMES.items():
        data = secret_data(defaults, f"{FULLNAME}-{component}-tls")
        cert = x509.load_pem_x509_certificate(data["tls.crt"])
        cert.verify_directly_issued_by(ca)
        assert data["ca.crt"] == secret_data(defaults, f"{FULLNAME}-ca")["tls.crt"]
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert set(names.get_values_for_type(x509.DNSName)) == {
            service,
            f"{service}.distsum",
            f"{service}.distsum.svc",
            f"{service}.distsum.svc.cluster.local",
            "localhost",
        }
        assert names.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
        key = serialization.load_pem_private_key(data["tls.key"], password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        assert key.public_key() == cert.public_key()
    client = x509.load_pem_x509_certificate(secret_data(defaults, f"{FULLNAME}-client-operator")["tls.crt"])
    client.verify_directly_issued_by(ca)
    assert client.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "operator"
    usages = client.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.CLIENT_AUTH in usages


def test_cert_manager_issues_every_certificate(renders: dict[str, Rendered]) -> None:
    rendered = renders["cert-manager"]
    certificates = {c["spec"]["secretName"]: c["spec"] for c in rendered.of_kind("Certificate")}
    secrets = {f"{FULLNAME}-sum-tls", f"{FULLNAME}-ledger-tls", f"{FULLNAME}-client-operator"}
    assert certificates.keys() == secrets
    issuer = {"name": "platform-ca", "kind": "ClusterIssuer", "group": "cert-manager.io"}
    for spec in certificates.values():
        assert spec["issuerRef"] == issuer
        assert spec["privateKey"]["rotationPolicy"] == "Always"
    assert f"{SERVICE_NAMES['sum']}.distsum.svc" in certificates[f"{FULLNAME}-sum-tls"]["dnsNames"]
    assert "server auth" in certificates[f"{FULLNAME}-ledger-tls"]["usages"]
    assert certificates[f"{FULLNAME}-client-operator"]["commonName"] == "operator"
    assert "client auth" in certificates[f"{FULLNAME}-client-operator"]["usages"]
    assert not rendered.of_kind("Secret"), "cert-manager writes the Secrets, the chart must not"
    for component, kind in WORKLOADS.items():
        assert tls_secret_of(pod_spec(rendered.one(kind, component))) == f"{FULLNAME}-{component}-tls"


def test_existing_secrets_are_mounted_as_named(renders: dict[str, Rendered]) -> None:
    rendered = renders["existing-secrets"]
    assert not rendered.of_kind("Secret") and not rendered.of_kind("Certificate")
    assert tls_secret_of(pod_spec(rendered.one("Deployment", "sum"))) == "sum-server"
    assert tls_secret_of(pod_spec(rendered.one("StatefulSet", "ledger"))) == "ledger-server"
    for pod in rendered.of_kind("Pod"):
        assert tls_secret_of(pod["spec"]) == "release-checker"


def test_the_helm_tests_present_the_test_client_certificate(defaults: Rendered) -> None:
    pods = {pod["spec"]["containers"][0]["name"]: pod for pod in defaults.of_kind("Pod")}
    for pod in pods.values():
        assert tls_secret_of(pod["spec"]) == f"{FULLNAME}-client-operator"
    assert env_of(pods["grpc-health"]["spec"]["containers"][0])["TLS"] == "true"
    readyz = pods["readyz"]["spec"]["containers"][0]
    assert env_of(readyz)["URL"] == f"https://{SERVICE_NAMES['ledger']}:8080"
    assert "/v1/total" in readyz["command"][2]


def test_behind_a_mesh_nothing_is_mounted_and_probes_are_plain(renders: dict[str, Rendered]) -> None:
    rendered = renders["mesh"]
    assert not rendered.of_kind("Secret") and not rendered.of_kind("Certificate")
    for component, kind in WORKLOADS.items():
        workload = rendered.one(kind, component)
        assert env_of(only_container(workload))["TLS_ENABLED"] == "false"
        assert tls_secret_of(pod_spec(workload)) is None
    ledger = only_container(rendered.one("StatefulSet", "ledger"))
    assert ledger["readinessProbe"]["httpGet"]["scheme"] == "HTTP"
    for pod in rendered.of_kind("Pod"):
        assert tls_secret_of(pod["spec"]) is None


def test_each_identity_gets_its_rights_and_network_peers(renders: dict[str, Rendered]) -> None:
    rendered = renders["auditor"]
    invoicer = "spiffe://example.org/ns/billing/sa/invoicer"
    sum_env = env_of(only_container(rendered.one("Deployment", "sum")))
    ledger_env = env_of(only_container(rendered.one("StatefulSet", "ledger")))
    assert sum_env["TLS_ALLOWED_CLIENTS"] == f"operator,{invoicer}"
    assert ledger_env["TLS_ALLOWED_CLIENTS"] == "operator,auditor"
    assert f"{FULLNAME}-client-auditor" in {s["metadata"]["name"] for s in rendered.of_kind("Secret")}

    def api_peers(component: str, port: str) -> list[Manifest]:
        ingress = rendered.one("NetworkPolicy", component)["spec"]["ingress"]
        # The first rule on the API port; the helm test pods have one of their own after it.
        (rule, _tests) = [r for r in ingress if r["ports"] == [{"port": port, "protocol": "TCP"}]]
        peers: list[Manifest] = rule["from"]
        return peers

    def client(name: str) -> Manifest:
        return {"podSelector": {"matchLabels": {"distributed-sum/client": name}}}

    assert api_peers("sum", "grpc") == [client("operator")]
    assert api_peers("ledger", "http") == [client("operator"), client("auditor")]


def test_a_headless_sum_service_is_named_in_the_sum_certificate(renders: dict[str, Rendered]) -> None:
    data = secret_data(renders["sum-headless"], f"{FULLNAME}-sum-tls")
    names = x509.load_pem_x509_certificate(data["tls.crt"]).extensions
    dns = names.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    headless = f"{SERVICE_NAMES['sum']}-headless"
    assert {headless, f"{headless}.distsum.svc", f"{SERVICE_NAMES['sum']}.distsum.svc"} <= set(dns)
    ledger = secret_data(renders["sum-headless"], f"{FULLNAME}-ledger-tls")["tls.crt"]
    ledger_names = x509.load_pem_x509_certificate(ledger).extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    )
    assert not [n for n in ledger_names.value.get_values_for_type(x509.DNSName) if "headless" in n]
