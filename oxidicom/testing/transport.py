"""An asyncio transport in memory, for driving a protocol object without a socket.

:class:`~oxidicom.net.acceptor.AcceptorProtocol` (the server's per-connection protocol) is
an :class:`asyncio.BufferedProtocol`: a test or a benchmark can hand it bytes through
``get_buffer``/``buffer_updated``, read what it answered from :attr:`MemoryTransport.sent`,
and end the connection with ``connection_lost`` exactly when it wants (in the middle of a
wait, say), which a real socket does not allow.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["MemoryTransport"]


class MemoryTransport:
    """What the acceptor needs of a transport. ``keep_sent=False`` only counts the writes
    (a benchmark that must not grow with what it measures)."""

    def __init__(
        self, peer: tuple[str, int] = ("127.0.0.1", 40000), *, keep_sent: bool = True
    ) -> None:
        self.peer = peer
        self.keep_sent = keep_sent
        self.sent = bytearray()
        """Everything written, in order (empty with ``keep_sent=False``)."""
        self.writes = 0
        self.closing = False
        """Set by ``close()`` or ``abort()``: the protocol asked to end the connection."""

    def get_extra_info(self, name: str, default: object = None) -> object:
        return self.peer if name == "peername" else default

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writelines((data,))

    def writelines(self, data: Sequence[bytes | bytearray | memoryview]) -> None:
        self.writes += 1
        if self.keep_sent:
            for piece in data:
                self.sent += piece

    def is_closing(self) -> bool:
        return self.closing

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def close(self) -> None:
        self.closing = True

    def abort(self) -> None:
        self.closing = True

    def get_write_buffer_size(self) -> int:
        return 0
