"""`make run`: Kafka (KRaft), the sum service and the ledger in the foreground; Ctrl-C stops them all."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

from distsum import settings as config
from ledger_svc.config import LedgerSettings
from localstack.certificates import LocalTls
from localstack.ports import refuse_ports_in_use
from localstack.run_settings import RunSettings
from localstack.stack import local_stack

ROOT = Path(__file__).resolve().parents[2]


def _tls_setup(tls: LocalTls | None, ledger_url: str) -> str:
    """The CLI's settings for mutual TLS to both services, as shell lines; nothing for plaintext."""
    if tls is None:
        return ""
    return (
        f"  # mutual TLS: the run's CA and the harness's client certificate\n"
        f"  export DISTSUM_TLS_CA_FILE={tls.ca_file} DISTSUM_TLS_CERT_FILE={tls.client_cert_file} "
        f"DISTSUM_TLS_KEY_FILE={tls.client_key_file} DISTSUM_LEDGER_URL={ledger_url}\n"
    )


def main() -> int:
    s = config.load(RunSettings)
    state_dir = s.state_dir or ROOT / ".run"
    refuse_ports_in_use(s.ports())
    # A plain list, not a threading.Event: Event.set() in a signal handler can deadlock on the lock the
    # interrupted Event.wait() holds (seen: make run ignoring Ctrl-C), appending cannot.
    signals: list[int] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda received, _: signals.append(received))

    print("==> Apache Kafka: fetching (first run only) and verifying the broker jars", flush=True)
    print(f"==> starting Kafka (KRaft) on 127.0.0.1:{s.kafka_port}", flush=True)
    try:
        with local_stack(
            state_dir,
            kafka_port=s.kafka_port,
            controller_port=s.kafka_controller_port,
            partitions=s.partitions,
            topic=s.topic,
            tls=LocalTls(state_dir / "tls") if s.tls else None,
        ) as stack:
            sums = stack.sum_service("sum-svc", grpc_port=s.grpc_port, metrics_port=s.metrics_port)
            ledger = stack.ledger("ledger", port=s.http_port, metrics_port=s.ledger_metrics_port)
            print(
                f"""
distributed-sum is running (state in {state_dir}, logs in {state_dir / "logs"}):
  Kafka            {stack.bootstrap}   topic {s.topic!r} ({s.partitions} partitions)
                   dead letters {LedgerSettings().dead_letters_for(s.topic)!r}
  sum service      grpc://{sums.target}   metrics {sums.metrics_url}
  ledger           {ledger.url}/v1/total   /v1/entries   /readyz   metrics {ledger.metrics_url}
  total file       {ledger.settings.total_file}

Try it in another terminal:
{_tls_setup(stack.tls, ledger.url)}  .venv/bin/distsum add 2 3
  .venv/bin/distsum total

Ctrl-C stops everything.""",
                flush=True,
            )
            while not signals:
                time.sleep(0.5)
                for process in (sums.process, ledger.process):
                    if not process.running:
                        print(f"!! {process.name} exited ({process.poll()}); last log lines:")
                        print(process.log_tail())
                        return 1
                if stack.kafka is not None and not stack.kafka.is_running:
                    print("!! Kafka exited; see", state_dir / "kafka" / "broker.log")
                    return 1
            print("==> stopping", flush=True)
        return 0
    finally:
        print("==> stopped", flush=True)


if __name__ == "__main__":
    sys.exit(main())
