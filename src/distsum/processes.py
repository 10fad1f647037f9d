"""Process helpers shared by the ledger supervisor and the local stack."""

from __future__ import annotations

import ctypes
import os
import signal
from collections.abc import Callable

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> Callable[[], None]:
    """A subprocess preexec_fn: the child gets SIGKILL when its parent dies.

    A SIGKILLed parent has no chance to stop its children; without this they would
    linger holding ports and files. libc is loaded here, before the fork, because only
    async-signal-safe work belongs between fork and exec.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    parent = os.getpid()

    def preexec() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os.kill(os.getpid(), signal.SIGKILL)

    return preexec


_PR_SET_NAME = 15


def name_os_thread(name: str) -> None:
    """Give the calling thread its name in the kernel too (/proc/<pid>/task/<tid>/comm, top -H, py-spy),
    so that CPU can be told per thread; Python's own thread names stay inside Python. At most 15 bytes."""
    ctypes.CDLL(None).prctl(_PR_SET_NAME, name.encode()[:15], 0, 0, 0)
