"""The helm test pods and NOTES.txt."""

from __future__ import annotations

from pathlib import Path

from tests.chart.chart_tools import Rendered, Values, render_notes
from tests.chart.conftest import EXTERNAL_BOOTSTRAP, SCENARIOS


def test_helm_test_pods_check_grpc_health_and_readyz(defaults: Rendered) -> None:
    pods = {pod["spec"]["containers"][0]["name"]: pod for pod in defaults.of_kind("Pod")}
    assert pods.keys() == {"grpc-health", "readyz"}
    for pod in pods.values():
        assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
        assert pod["spec"]["restartPolicy"] == "Never"
    grpc_script = pods["grpc-health"]["spec"]["containers"][0]["command"]
    assert grpc_script[:2] == ["python", "-c"] and "grpc_health" in grpc_script[2]
    assert pods["grpc-health"]["spec"]["containers"][0]["image"] == "distributed-sum/sum-svc:0.1.0"
    readyz_script = pods["readyz"]["spec"]["containers"][0]["command"]
    assert readyz_script[:2] == ["python", "-c"] and "urllib" in readyz_script[2]
    assert pods["readyz"]["spec"]["containers"][0]["image"] == "distributed-sum/ledger-svc:0.1.0"


def test_helm_test_scripts_are_valid_python(defaults: Rendered) -> None:
    for pod in defaults.of_kind("Pod"):
        compile(pod["spec"]["containers"][0]["command"][2], pod["metadata"]["name"], "exec")


def test_notes_show_how_to_call_the_services_with_the_client_certificate(tmp_path: Path) -> None:
    notes = render_notes(Values(), tmp_path)
    tls = "-cacert distsum-tls/ca.crt -cert distsum-tls/tls.crt -key distsum-tls/tls.key"
    for example in (
        "kubectl -n distsum get secret distsum-distributed-sum-client-operator",
        "port-forward svc/distsum-distributed-sum-sum 50051:50051",
        f"grpcurl {tls} 127.0.0.1:50051 grpc.health.v1.Health/Check",
        "distsum.v1.SumService/Add",
        "--cert distsum-tls/tls.crt --key distsum-tls/tls.key https://127.0.0.1:8080/v1/total",
        "DISTSUM_TLS_CERT_FILE=distsum-tls/tls.crt",
        "distsum add 2 3",
        "distsum total",
        'Add "operator", the ledger "operator"',
        "pod-security.kubernetes.io/enforce=restricted",
        "distsum-distributed-sum-kafka-bootstrap:9093",
        'sum:    Write, Describe on topic "sums"',
        "The KafkaUsers distsum-distributed-sum-sum-kafka and distsum-distributed-sum-ledger-kafka",
    ):
        assert example in notes
    assert "-plaintext" not in notes and "http://127.0.0.1:8080" not in notes


def test_notes_behind_a_mesh_call_in_plaintext(tmp_path: Path) -> None:
    notes = render_notes(SCENARIOS["mesh"], tmp_path)
    for example in (
        "grpcurl -plaintext 127.0.0.1:50051 grpc.health.v1.Health/Check",
        "curl -s http://127.0.0.1:8080/v1/total",
        "tls.meshProvidesMtls",
    ):
        assert example in notes
    assert "distsum-tls" not in notes


def test_notes_for_an_external_kafka_name_its_bootstrap(tmp_path: Path) -> None:
    notes = render_notes(SCENARIOS["external-kafka"], tmp_path)
    assert EXTERNAL_BOOTSTRAP in notes
    assert "must already exist" in notes
    assert "to the users of the Secrets sum-kafka-cert and ledger-kafka-cert" in notes


def test_notes_print_the_network_policy_peers_as_configured(tmp_path: Path) -> None:
    notes = render_notes(
        Values(set_jsons=('networkPolicy.sumClients=[{"ipBlock": {"cidr": "203.0.113.0/24"}}]',)), tmp_path
    )
    operator = '{"podSelector":{"matchLabels":{"distributed-sum/client":"operator"}}}'
    assert f'gRPC (port 50051) from [{operator},{{"ipBlock":{{"cidr":"203.0.113.0/24"}}}}]' in notes
    assert f"REST (port 8080) from [{operator}]" in notes
    assert "distributed-sum/client=<its tls.clients name>" in notes
    kube_system = '{"namespaceSelector":{"matchLabels":{"kubernetes.io/metadata.name":"kube-system"}}}'
    assert f"DNS to [{kube_system}]" in notes
    assert "()" not in notes and ":)" not in notes, "a value the NOTES name does not exist"
