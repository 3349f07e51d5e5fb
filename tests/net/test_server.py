"""Connections are bounded before they say anything: in all, and per peer address.

A connection that has not completed its A-ASSOCIATE-RQ holds a file descriptor and up to
1 MiB of request until ARTIM expires; one peer opening many of them must neither exhaust
the process nor keep other peers out.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterator

from oxidicom.net.server import DicomServer, ServerConfig
from oxidicom.testing.scu import BlockingScu
from tests.net.test_acceptor import App


@contextlib.asynccontextmanager
async def serving(**config: int) -> AsyncIterator[DicomServer]:
    server = DicomServer(App(), ServerConfig(host="127.0.0.1", port=0, **config))  # type: ignore[arg-type]
    await server.start()
    try:
        yield server
    finally:
        await server.close(grace=1)


@contextlib.contextmanager
def silent_connections(port: int, count: int, source: str = "127.0.0.1") -> Iterator[None]:
    """``count`` connections that say nothing."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.create_connection(("127.0.0.1", port), source_address=(source, 0))
            sockets.append(sock)
        yield
    finally:
        for sock in sockets:
            sock.close()


def closed_at_once(port: int, source: str = "127.0.0.1") -> bool:
    """Whether a new connection is closed by the server without a word."""
    with socket.create_connection(("127.0.0.1", port), source_address=(source, 0)) as sock:
        sock.settimeout(5)
        try:
            return sock.recv(1) == b""
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False


def echo(port: int, source: str = "127.0.0.1") -> int:
    with BlockingScu("127.0.0.1", port, source_host=source, timeout=5) as peer:
        status = peer.echo()
        peer.release()
        return status


async def until_connections(server: DicomServer, count: int) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while server.connection_count != count:
        assert loop.time() < deadline, f"{server.connection_count} connections, not {count}"
        await asyncio.sleep(0.01)


async def test_connections_beyond_the_total_limit_are_closed_at_once() -> None:
    async with serving(max_connections=3) as server:
        with silent_connections(server.port, 3):
            await until_connections(server, 3)
            assert await asyncio.to_thread(closed_at_once, server.port)
        await until_connections(server, 0)
        # Room again once they are gone.
        assert await asyncio.to_thread(echo, server.port) == 0x0000


async def test_one_peer_cannot_hold_more_than_twice_its_association_limit() -> None:
    async with serving(max_associations_per_peer=2) as server:
        with silent_connections(server.port, 4):
            await until_connections(server, 4)
            assert await asyncio.to_thread(closed_at_once, server.port)
            # Another address is not affected.
            assert await asyncio.to_thread(echo, server.port, "127.0.0.2") == 0x0000
        await until_connections(server, 0)
        assert await asyncio.to_thread(echo, server.port) == 0x0000
