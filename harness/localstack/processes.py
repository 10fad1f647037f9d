"""The services and tools as real child processes: started in a session of their own, logging to a file,
dying with their parent, stopped or killed as a whole process group."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

from distsum.processes import die_with_parent


class ManagedProcess:
    """A child process in its own session, logging to a file, that dies with its parent. Started again
    with the same argv and environment, it comes back on the same ports and directories."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_path: Path):
        self.name = name
        self.argv = argv
        self.env = env
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> ManagedProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                self.argv,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent(),  # noqa: PLW1509
            )
        return self

    @property
    def pid(self) -> int:
        assert self._process is not None, f"{self.name} was never started"
        return self._process.pid

    def poll(self) -> int | None:
        return None if self._process is None else self._process.poll()

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def assert_running(self) -> None:
        """Raise, with the end of its log, when the process has exited: a wait on it is then over."""
        if not self.running:
            raise RuntimeError(f"{self.name} exited ({self.poll()}); last log lines:\n{self.log_tail()}")

    def stop(self, timeout: float = 20) -> int | None:
        """SIGTERM the whole process group, then SIGKILL it if it does not go in time."""
        if self._process is None:
            return None
        if self._process.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                self._process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self._process.wait()
        return self._process.returncode

    def kill(self) -> None:
        """SIGKILL the whole process group: a crash with no chance to clean up."""
        if self._process is not None and self._process.poll() is None:
            self._signal_group(signal.SIGKILL)
            self._process.wait()

    def pause(self) -> None:
        """SIGSTOP the whole process group: frozen as by a long GC pause, CPU throttling or a frozen node."""
        self._signal_group(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal_group(signal.SIGCONT)

    def wait(self, timeout: float) -> int:
        assert self._process is not None
        return self._process.wait(timeout)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def _signal_group(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signum)


def python_module(module: str) -> list[str]:
    return [sys.executable, "-m", module]
