"""Process helpers shared by the ledger supervisor and the local stack."""

from __future__ import annotations

import ctypes
import signal

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """For subprocess preexec_fn: the child gets SIGKILL when its parent dies.

    A SIGKILLed parent has no chance to stop its children; without this they would
    linger holding ports and files.
    """
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
