"""Loopback ports for the local stack: free ones, or fixed ones checked before anything starts."""

from __future__ import annotations

import socket


class PortInUse(SystemExit):
    pass


def free_port() -> int:
    """A currently free loopback TCP port (racy by nature; fine for a local stack)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def refuse_ports_in_use(ports: dict[str, int]) -> None:
    """Stop at once, naming the variable that moves it, when a port is taken: a broker already on the
    Kafka port would otherwise answer in place of ours."""
    if len(set(ports.values())) != len(ports):
        raise PortInUse(f"two of {', '.join(f'{n}={p}' for n, p in ports.items())} name the same port")
    for name, port in ports.items():
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            # A listener refuses the bind; connections of an earlier run lingering in TIME_WAIT do not.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", port))
            except OSError as exc:
                raise PortInUse(
                    f"port {port} is already in use ({exc.strerror}): stop what holds it, or set {name} "
                    "to another port"
                ) from None
