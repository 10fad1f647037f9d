"""Entrypoint of the ledger service: runs the consumer and the gunicorn web server side by side.

Two processes, not threads in one: the consumer is the store's only writer and
must not be forked into web workers; gunicorn scales its read-only workers on its
own. This process only supervises: if either child exits, it stops the other and
exits with the child's code, so the container restarts as a whole and a dead
consumer can never hide behind a healthy-looking web server.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from types import FrameType

from distsum import logs, settings, tls
from distsum.processes import die_with_parent
from ledger_svc.config import LedgerSettings
from ledger_svc.consume.main import EXIT_CREDENTIALS_ROTATED
from ledger_svc.ops import server as metrics_port
from ledger_svc.watchdog import ConsumerWatchdog

log = logging.getLogger("ledger_svc")

_STOP_GRACE_SECONDS = 20
_WATCH_INTERVAL_SECONDS = 0.5


def _spawn(argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(argv, env=env, preexec_fn=die_with_parent())  # noqa: PLW1509


# Files 0600 and directories 0700, in this process and the children that inherit it: the store holds
# every caller's operands and the total, readable by nobody else on the node or the volume.
_PRIVATE_UMASK = 0o077


def main() -> None:
    os.umask(_PRIVATE_UMASK)
    logs.configure("ledger")
    config = settings.load(LedgerSettings)
    settings.load(settings.KafkaSettings)
    transport = settings.load(tls.TlsSettings)

    config.data_dir.mkdir(parents=True, exist_ok=True)
    # Metric files of a previous run would be summed into this one's counters.
    shutil.rmtree(config.metrics_dir, ignore_errors=True)
    config.metrics_dir.mkdir(parents=True)
    config.status_file.unlink(missing_ok=True)
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(config.metrics_dir)}

    children = {
        "consumer": _spawn([sys.executable, "-m", "ledger_svc.consume.main"], env),
        "web": _spawn(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--config",
                "python:ledger_svc.web.gunicorn_conf",
                "ledger_svc.web.wsgi:app",
            ],
            env,
        ),
    }
    metrics_port.serve(
        config.http_host, config.metrics_port, config.metrics_dir, transport, config.backup_dir
    )
    log.info(
        "ledger started",
        extra={
            "http_port": config.http_port,
            "metrics_port": config.metrics_port,
            "data_dir": str(config.data_dir),
            **{k: p.pid for k, p in children.items()},
        },
    )

    stopping = False

    def forward(signum: int, _: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for child in children.values():
            if child.poll() is None:
                child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)

    watchdog = ConsumerWatchdog(config.status_file, config.consumer_stuck_seconds, children["consumer"].kill)
    exited_name, exit_code = _wait_for_first_exit(children, watchdog)
    if not stopping:
        if (exited_name, exit_code) == ("consumer", EXIT_CREDENTIALS_ROTATED):
            log.warning("the consumer stopped for new Kafka credentials; restarting the ledger")
        else:
            exited = {"child": exited_name, "exit_code": exit_code}
            log.error("child exited; stopping the ledger", extra=exited)
        for child in children.values():
            if child.poll() is None:
                child.terminate()
    # One deadline for both children, well inside the pod's 30 s termination grace period.
    deadline = time.monotonic() + _STOP_GRACE_SECONDS
    for child in children.values():
        try:
            child.wait(timeout=max(deadline - time.monotonic(), 0))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    log.info("ledger stopped")
    if stopping and exit_code in (0, -signal.SIGTERM, -signal.SIGINT):
        sys.exit(0)
    # A child killed by a signal reports minus its number; shells and kubelets read 128 + number.
    sys.exit(128 - exit_code if exit_code < 0 else exit_code or 1)


def _wait_for_first_exit(
    children: dict[str, subprocess.Popen[bytes]], watchdog: ConsumerWatchdog
) -> tuple[str, int]:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return "none", 1
        except InterruptedError:
            continue
        if pid == 0:
            watchdog.check()
            time.sleep(_WATCH_INTERVAL_SECONDS)
            continue
        for name, child in children.items():
            if child.pid == pid:
                child.returncode = os.waitstatus_to_exitcode(status)
                return name, child.returncode


if __name__ == "__main__":
    main()
