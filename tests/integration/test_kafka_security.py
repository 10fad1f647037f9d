"""Kafka locked down (issue 19), on a real broker that listens with TLS only, authenticates every client
by certificate or SCRAM password and enforces ACLs (localstack.certificates.KafkaTls,
localstack.kafka_acls): the services work with their own identities either way, a client without a
certificate of the CA or with a wrong password gets nothing, and each identity can do its own part only,
so an event forged by anyone but the sum service never reaches the total."""

from __future__ import annotations

import contextlib
import datetime as dt
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer

from distsum import event_codec
from distsum.clients.waiting import wait_until
from distsum.domain import SumComputed
from distsum.kafka import clients as kafka_clients
from distsum.kafka.security import client_security
from distsum.settings import KafkaSettings
from ledger_svc.consume.main import EXIT_CREDENTIALS_ROTATED
from localstack.certificates import KAFKA_TOOLING, CertificateAuthority, KafkaTls
from localstack.kafka_acls import LEDGER_PRINCIPAL, SUM_PRINCIPAL, grant, service_grants
from localstack.kafka_broker import KafkaBroker, admin_client
from localstack.stack import QUICK_RECOVERY, Ledger, LocalStack, create_event_topics
from tests.services import new_id

TOPIC, DEAD_LETTERS, GROUP = "sums", "sums.dlq", "distsum-ledger"
# A denied request is answered at once; what is never answered (no TLS, an unknown CA) times out here.
REFUSED_WITHIN_MS = 5000


@dataclass
class Secured:
    broker: KafkaBroker
    tls: KafkaTls
    stack: LocalStack
    tmp: Path

    def password_file(self, user: str) -> Path:
        """The file holding `user`'s SCRAM password (the user exists on the broker)."""
        return self.tmp / f"{user}.password"

    def client(self, principal: str) -> dict[str, Any]:
        """A client's settings as `principal` (a certificate of the broker's CA)."""
        return {"bootstrap.servers": self.broker.bootstrap, **self.tls.client_security(principal)}


@pytest.fixture(scope="module")
def secured(kafka_libs: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    work = tmp_path_factory.mktemp("secured-kafka")
    tls = KafkaTls(work / "tls")
    with KafkaBroker(kafka_libs, work / "kafka", tls=tls) as broker, contextlib.ExitStack() as resources:
        create_event_topics(broker, TOPIC, 2)
        grant(
            admin_client(broker.bootstrap, broker.client_security), service_grants(TOPIC, DEAD_LETTERS, GROUP)
        )
        for user in (SUM_PRINCIPAL, LEDGER_PRINCIPAL):
            password = secrets.token_urlsafe(24)
            (work / f"{user}.password").write_text(password + "\n")
            broker.create_scram_user(user, password)
        stack = LocalStack(resources, broker.bootstrap, TOPIC, work, QUICK_RECOVERY)
        yield Secured(broker, tls, stack, work)


def produce(config: dict[str, Any], payload: bytes, topic: str = TOPIC) -> KafkaError | None:
    """The delivery report's error of one record (None: written), as an idempotent acks=all producer."""
    producer = Producer(
        kafka_clients.producer_config(config.pop("bootstrap.servers"), settings=config)
        | {"message.timeout.ms": REFUSED_WITHIN_MS}
    )
    errors: list[KafkaError | None] = []
    producer.produce(topic, payload, key=b"key", on_delivery=lambda error, _: errors.append(error))
    producer.flush(REFUSED_WITHIN_MS / 1000 + 5)
    assert len(errors) == 1, "no delivery report"
    return errors[0]


def forged_event() -> bytes:
    now = dt.datetime.now(dt.UTC)
    return event_codec.encode(SumComputed(request_id=new_id(), a=10**9, b=1, sum=10**9 + 1, produced_at=now))


def first_error(consumer: Consumer, seconds: float = 15) -> KafkaError | None:
    """The first error a subscribed consumer meets (None: it read or waited without one)."""
    deadline = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)
    try:
        while dt.datetime.now(dt.UTC) < deadline:
            message = consumer.poll(0.5)
            error: KafkaError | None = None if message is None else message.error()
            if error is not None:
                return error
        return None
    finally:
        consumer.close()


def dead_lettered(ledger: Ledger) -> bool:
    return ledger.total()["dead_letters"] == 1


def test_the_services_work_with_their_own_identities_by_certificate_or_password(secured: Secured) -> None:
    sum_svc = secured.stack.sum_service(env=secured.tls.client_env(SUM_PRINCIPAL))
    ledger = secured.stack.ledger(env={**secured.tls.client_env(LEDGER_PRINCIPAL), "LEDGER_GROUP_ID": GROUP})
    # The same users by SCRAM password (User:sum-svc whichever way it proves it), on the password
    # listener; the second ledger has a group of its own under the granted prefix.
    by_password = {
        principal: {**secured.tls.scram_env(principal, secured.password_file(principal)),
                    "KAFKA_BOOTSTRAP_SERVERS": secured.broker.scram_bootstrap}
        for principal in (SUM_PRINCIPAL, LEDGER_PRINCIPAL)
    }  # fmt: skip
    sum_by_password = secured.stack.sum_service(env=by_password[SUM_PRINCIPAL])
    ledger_by_password = secured.stack.ledger(
        "ledger-by-password", env={**by_password[LEDGER_PRINCIPAL], "LEDGER_GROUP_ID": f"{GROUP}-by-password"}
    )
    with sum_svc.client() as client:
        sums = [client.add(new_id(), a, 3).sum for a in (1, 2, 3)]
    with sum_by_password.client() as client:
        sums.append(client.add(new_id(), 4, 3).sum)
    assert sums == [4, 5, 6, 7]
    # An undecodable record (written by the tooling, a super user) goes to the dead letters, which the
    # ledger may write.
    assert produce(secured.client(KAFKA_TOOLING), b"\xff not an event") is None
    for reader in (ledger, ledger_by_password):
        total = reader.client.wait_count(4)
        assert (total["total"], total["count"]) == ("22", 4)
        wait_until(partial(dead_lettered, reader), 30, "the undecodable record dead-lettered", 0.2)


def test_a_wrong_password_or_an_unknown_user_gets_nothing(secured: Secured) -> None:
    wrong = secured.tmp / "wrong-password"
    wrong.write_text("not the password\n")
    for username, password_file in ((SUM_PRINCIPAL, wrong), ("nobody", secured.password_file(SUM_PRINCIPAL))):
        kafka = KafkaSettings.model_construct(
            security_protocol="SASL_SSL",
            ca_file=secured.tls.ca_file,
            sasl_mechanism="SCRAM-SHA-512",
            sasl_username=username,
            sasl_password_file=password_file,
        )
        security = {**client_security(kafka), "log_level": 0}
        admin = kafka_clients.admin(secured.broker.scram_bootstrap, security=security)
        with pytest.raises(KafkaException):
            admin.list_topics(timeout=5)
        error = produce({"bootstrap.servers": secured.broker.scram_bootstrap, **security}, forged_event())
        assert error is not None, f"{username}: a record was written"


def test_without_a_certificate_of_the_ca_nothing_gets_in(secured: Secured) -> None:
    stranger_ca = CertificateAuthority("another CA")
    pair = stranger_ca.issue(SUM_PRINCIPAL, client=True)
    cert, key = pair.write(secured.tls.directory / "stranger", "client")
    refused: dict[str, dict[str, Any]] = {
        "plaintext": {},
        "TLS without a client certificate": {
            "security.protocol": "SSL",
            "ssl.ca.location": str(secured.tls.ca_file),
        },
        "a certificate of another CA": {
            "security.protocol": "SSL",
            "ssl.ca.location": str(secured.tls.ca_file),
            "ssl.certificate.location": str(cert),
            "ssl.key.location": str(key),
        },
    }
    for what, security in refused.items():
        admin = kafka_clients.admin(secured.broker.bootstrap, settings={"log_level": 0}, security=security)
        with pytest.raises(KafkaException):
            admin.list_topics(timeout=5)
        error = produce({"bootstrap.servers": secured.broker.bootstrap, "log_level": 0, **security}, b"x")
        assert error is not None, f"{what}: a record was written"


def test_each_identity_does_its_own_part_only(secured: Secured) -> None:
    denied = {KafkaError.TOPIC_AUTHORIZATION_FAILED, KafkaError.GROUP_AUTHORIZATION_FAILED}
    # The sum service cannot read the events, join the ledger's group or delete the topic.
    reader = Consumer(secured.client(SUM_PRINCIPAL) | {"group.id": GROUP, "auto.offset.reset": "earliest"})
    reader.subscribe([TOPIC])
    error = first_error(reader)
    assert error is not None and error.code() in denied, error
    admin = kafka_clients.admin(secured.broker.bootstrap, security=secured.tls.client_security(SUM_PRINCIPAL))
    with pytest.raises(KafkaException) as deleting:
        admin.delete_topics([TOPIC], operation_timeout=10)[TOPIC].result(15)
    assert deleting.value.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    # The ledger cannot write events; nor can a certificate of the CA that was granted nothing. So a
    # forged event never reaches the log, let alone the total.
    for principal in (LEDGER_PRINCIPAL, "intruder"):
        error = produce(secured.client(principal), forged_event())
        assert error is not None and error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, (principal, error)


def test_rotated_credentials_restart_each_service_and_lose_nothing(secured: Secured) -> None:
    # Each service's own copy of its key pair, checked every half second and acted on at once.
    files = secured.tmp / "rotating"
    quick = {"KAFKA_CREDENTIALS_CHECK_SECONDS": "0.5", "KAFKA_CREDENTIALS_RESTART_SPREAD_SECONDS": "0"}

    def identity(principal: str) -> dict[str, str]:
        cert, key = secured.tls.ca.issue(principal, client=True).write(files, principal)
        return {**secured.tls.client_env(principal), "KAFKA_CERT_FILE": str(cert), "KAFKA_KEY_FILE": str(key)}

    def renew(principal: str) -> None:
        """As the user operator renews a certificate: same CA and name, new key, files replaced."""
        secured.tls.ca.issue(principal, client=True).write(files, principal)

    sum_svc = secured.stack.sum_service("sum-rotating", env={**identity(SUM_PRINCIPAL), **quick})
    ledger = secured.stack.ledger(
        "ledger-rotating",
        env={**identity(LEDGER_PRINCIPAL), **quick, "LEDGER_GROUP_ID": f"{GROUP}-rotating"},
    )
    ids = [new_id() for _ in range(6)]
    with sum_svc.client() as client:
        for request_id in ids[:3]:
            client.add(request_id, 1, 1)

    renew(SUM_PRINCIPAL)
    assert sum_svc.process.wait(30) == 0, "the sum service did not stop for its new certificate"
    sum_svc.restart()
    with sum_svc.client() as client:
        for request_id in ids[3:]:
            client.add(request_id, 1, 1)

    renew(LEDGER_PRINCIPAL)
    assert ledger.process.wait(30) == EXIT_CREDENTIALS_ROTATED, ledger.process.log_tail()
    ledger.restart()

    def applied() -> list[str] | None:
        mine = [e["request_id"] for e in ledger.client.entries() if e["request_id"] in ids]
        return mine if len(mine) >= len(ids) else None

    assert sorted(wait_until(applied, 60, "every Add applied after both restarts", 0.5)) == sorted(ids)
