"""Loopback ports: pick a free one, and tell when a receiver listens on it.

Readiness is read from /proc/net/tcp rather than probed with a connection, because a probe
is an association attempt the receiver has to handle (and log, and spend CPU on).
"""

from __future__ import annotations

import socket
from pathlib import Path

_TCP_LISTEN = "0A"
_PROC_NET = (Path("/proc/net/tcp"), Path("/proc/net/tcp6"))


def free_port() -> int:
    """A port nobody listens on right now (the kernel's choice for an ephemeral bind)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def is_listening(port: int) -> bool:
    """Whether some socket on this machine is in LISTEN state on ``port`` (IPv4 or IPv6)."""
    for table in _PROC_NET:
        try:
            lines = table.read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            fields = line.split()
            local, state = fields[1], fields[3]
            if state == _TCP_LISTEN and int(local.rsplit(":", 1)[1], 16) == port:
                return True
    return False
