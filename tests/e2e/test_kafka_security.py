"""Kafka locked down on the cluster (issue 19): the release runs against a broker that requires client
certificates and enforces ACLs (the rest of the e2e suite, the pod deletions of test_disruption included,
runs that way), and a pod without a certificate of the brokers' CA writes nothing."""

from __future__ import annotations

import json
from typing import Any

from tests.e2e import secured_kafka
from tests.e2e.conftest import Release
from tests.e2e.kube import python_job, run_in_cluster

JOB_SECONDS = 180
CA_MOUNT, SUM_MOUNT = "/etc/distsum/kafka-ca", "/etc/distsum/kafka-sum"

FORGE_SCRIPT = """
import json, sys
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient
bootstrap, control, attempts = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
# The sum service's certificate reaches the brokers from this very pod: what is refused below is refused
# for its credentials, not for the network.
topics = AdminClient({"bootstrap.servers": bootstrap, **control}).list_topics(timeout=60).topics
print(json.dumps({"control": "sums" in topics}))
for what, security in attempts.items():
    reports = []
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all",
                         "message.timeout.ms": 10000, "log_level": 0, **security})
    producer.produce("sums", b"forged", key=b"forged", on_delivery=lambda error, _: reports.append(error))
    producer.flush(30)
    outcome = "no report" if not reports else "written" if reports[0] is None else str(reports[0])
    print(json.dumps({what: outcome}))
"""


def test_a_pod_without_a_certificate_of_the_brokers_ca_writes_nothing(
    batch: Any, core: Any, release: Release, kafka_bootstrap: str
) -> None:
    control = secured_kafka.tls_client_settings(SUM_MOUNT)
    attempts = {
        "plaintext": {},
        "TLS without a client certificate": {
            "security.protocol": "SSL",
            "ssl.ca.location": f"{CA_MOUNT}/ca.crt",
        },
    }
    job = python_job(
        "forger", release.sum_image, FORGE_SCRIPT, kafka_bootstrap, json.dumps(control), json.dumps(attempts),
        secrets={secured_kafka.CA_SECRET: CA_MOUNT, secured_kafka.USER_SECRETS["sum"]: SUM_MOUNT},
    )  # fmt: skip
    log = run_in_cluster(batch, core, release.namespace, job, JOB_SECONDS)
    report = {k: v for line in log.splitlines() if line.startswith("{") for k, v in json.loads(line).items()}
    assert report.pop("control") is True, log
    assert report.keys() == attempts.keys(), log
    for what, outcome in report.items():
        assert outcome not in ("written", "no report"), f"{what}: {outcome}\n{log}"
