"""`make run`: Kafka (KRaft), the sum service and the ledger in the foreground; Ctrl-C stops them all."""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
from pathlib import Path

from devstack.kafka_broker import KafkaBroker, create_topic, ensure_kafka_libs
from devstack.services import (
    ManagedProcess,
    grpc_health_status,
    http_ready,
    ledger_env,
    python_module,
    sum_service_env,
    wait_until,
)

ROOT = Path(__file__).resolve().parents[2]


def _port(name: str, default: int) -> int:
    raw = os.environ.get(name, str(default))
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= 65535:
        raise SystemExit(f"{name}={raw!r} must be a number between 1 and 65535")
    return int(raw)


def _refuse_ports_in_use(ports: dict[str, int]) -> None:
    """Stop at once, naming the variable that moves it, when a port is taken: a broker already on the
    Kafka port would otherwise answer in place of ours."""
    if len(set(ports.values())) != len(ports):
        raise SystemExit(f"two of {', '.join(f'{n}={p}' for n, p in ports.items())} name the same port")
    for name, port in ports.items():
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            # A listener refuses the bind; connections of an earlier run lingering in TIME_WAIT do not.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", port))
            except OSError as exc:
                raise SystemExit(
                    f"port {port} is already in use ({exc.strerror}): stop what holds it, or set {name} "
                    "to another port"
                ) from None


def main() -> int:
    state_dir = Path(os.environ.get("DISTSUM_STATE_DIR", ROOT / ".run"))
    topic = os.environ.get("KAFKA_TOPIC", "sums")
    dead_letters = os.environ.get("LEDGER_DEAD_LETTER_TOPIC") or f"{topic}.dlq"
    partitions = _port("DISTSUM_PARTITIONS", 6)
    kafka_port, grpc_port = _port("DISTSUM_KAFKA_PORT", 9092), _port("SUM_GRPC_PORT", 50051)
    metrics_port, http_port = _port("SUM_METRICS_PORT", 9464), _port("LEDGER_HTTP_PORT", 8080)

    ports = {
        "DISTSUM_KAFKA_PORT": kafka_port,
        "DISTSUM_KAFKA_CONTROLLER_PORT": _port("DISTSUM_KAFKA_CONTROLLER_PORT", 9093),
        "SUM_GRPC_PORT": grpc_port,
        "SUM_METRICS_PORT": metrics_port,
        "LEDGER_HTTP_PORT": http_port,
    }
    _refuse_ports_in_use(ports)
    print("==> Apache Kafka: fetching (first run only) and verifying the broker jars", flush=True)
    broker = KafkaBroker(
        ensure_kafka_libs(),
        state_dir / "kafka",
        port=kafka_port,
        controller_port=ports["DISTSUM_KAFKA_CONTROLLER_PORT"],
    )
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())

    services: list[ManagedProcess] = []
    try:
        print(f"==> starting Kafka (KRaft) on {broker.bootstrap}", flush=True)
        broker.start()
        broker.wait_ready(120)
        create_topic(broker.bootstrap, topic, partitions)
        create_topic(broker.bootstrap, dead_letters, 1)
        logs = state_dir / "logs"
        services.append(
            ManagedProcess(
                "sum-svc",
                python_module("sum_svc"),
                sum_service_env(broker.bootstrap, topic, grpc_port, metrics_port, SUM_GRPC_HOST="127.0.0.1"),
                logs / "sum-svc.log",
            ).start()
        )
        services.append(
            ManagedProcess(
                "ledger",
                python_module("ledger_svc"),
                ledger_env(
                    broker.bootstrap, topic, http_port, state_dir / "ledger-data", state_dir / "ledger-run"
                ),
                logs / "ledger.log",
            ).start()
        )
        target = f"127.0.0.1:{grpc_port}"
        ledger_url = f"http://127.0.0.1:{http_port}"
        wait_until(lambda: grpc_health_status(target) == "SERVING", 60, "the sum service to be SERVING")
        wait_until(lambda: http_ready(f"{ledger_url}/readyz"), 60, "the ledger to be ready")
        print(
            f"""
distributed-sum is running (state in {state_dir}, logs in {logs}):
  Kafka            {broker.bootstrap}   topic {topic!r} ({partitions} partitions)
                   dead letters {dead_letters!r}
  sum service      grpc://{target}   metrics http://127.0.0.1:{metrics_port}/metrics
  ledger           {ledger_url}/v1/total   /v1/entries   /readyz   /metrics
  total file       {state_dir / "ledger-data" / "total"}

Try it in another terminal:
  .venv/bin/distsum add 2 3
  .venv/bin/distsum total

Ctrl-C stops everything.""",
            flush=True,
        )
        while not stop.wait(0.5):
            for service in services:
                if not service.running:
                    print(
                        f"!! {service.name} exited ({service.poll()}); last log lines:\n{service.log_tail()}"
                    )
                    return 1
            if not broker.is_running:
                print("!! Kafka exited; see", broker.data_dir / "broker.log")
                return 1
        return 0
    finally:
        print("==> stopping", flush=True)
        for service in reversed(services):
            service.stop()
        broker.stop()
        print("==> stopped", flush=True)


if __name__ == "__main__":
    sys.exit(main())
