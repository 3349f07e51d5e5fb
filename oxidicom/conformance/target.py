"""The one address the conformance fuzzer talks to, and nothing else.

The host is resolved once, to one address, and every connection goes to exactly that
address and port: no discovery, no fallback to another address of the same name. Inputs are
deliberately malformed, so a non-loopback address is refused unless the operator says the
host is theirs (``allow_remote``).
"""

from __future__ import annotations

import ipaddress
import socket

import attrs


class UnsafeTargetError(ValueError):
    """The target is not a loopback address and the operator did not say it is theirs."""


@attrs.frozen
class Target:
    """A resolved peer: ``address`` is what every connection uses; ``host`` is for reports."""

    host: str
    port: int
    address: str
    family: int = socket.AF_INET

    @classmethod
    def resolve(cls, host: str, port: int, *, allow_remote: bool = False) -> Target:
        """Resolve ``host`` to one address (the first the resolver gives), and check it."""
        if not 0 < port < 65536:
            raise UnsafeTargetError(f"port {port} is not a TCP port")
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as error:
            raise UnsafeTargetError(f"cannot resolve {host!r}: {error}") from None
        family, _, _, _, sockaddr = infos[0]
        address = str(sockaddr[0])
        if (
            not allow_remote
            and not ipaddress.ip_address(address.split("%", maxsplit=1)[0]).is_loopback
        ):
            raise UnsafeTargetError(
                f"{host} ({address}) is not a loopback address: the conformance fuzzer sends "
                "malformed PDUs; pass --i-own-this-host to aim it at a host you are "
                "responsible for"
            )
        return cls(host, port, address, family)

    def connect(self, timeout: float) -> socket.socket:
        """A new TCP connection to the target (TCP_NODELAY, so each write is one segment)."""
        sock = socket.socket(self.family, socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.connect((self.address, self.port))
        except BaseException:
            sock.close()
            raise
        return sock

    def __str__(self) -> str:
        shown = self.host if self.host == self.address else f"{self.host} ({self.address})"
        return f"{shown} port {self.port}"
