"""The bench's progress lines, each with the seconds since it started."""

from __future__ import annotations

import time

_T0 = time.monotonic()


def say(message: str) -> None:
    print(f"==> [{time.monotonic() - _T0:5.0f} s] {message}", flush=True)
