"""A TCP proxy between a client under test and RabbitMQ or NATS, to cut and restore at will.

The shared brokers on loopback must stay up for everyone, so outages are simulated here:
:meth:`BrokerProxy.cut` closes the listening socket (new connections are refused) and
every open connection (the client sees the broker go away); :meth:`BrokerProxy.restore`
listens again on the same port.
"""

from __future__ import annotations

import asyncio
import contextlib

LOOPBACK = "127.0.0.1"
_CHUNK = 65536


class BrokerProxy:
    """Forwards ``127.0.0.1:{port}`` to ``target``; runs in the test's event loop."""

    def __init__(self, target_port: int, target_host: str = LOOPBACK) -> None:
        self._target = (target_host, target_port)
        self._server: asyncio.Server | None = None
        self._port = 0
        self._pipes: set[asyncio.Task[None]] = set()
        self._transports: set[asyncio.WriteTransport] = set()
        self.connections = 0
        """Client connections accepted so far."""

    @property
    def port(self) -> int:
        if not self._port:
            raise RuntimeError("proxy not started")
        return self._port

    def url(self, scheme: str) -> str:
        return f"{scheme}://{LOOPBACK}:{self.port}"

    @property
    def listening(self) -> bool:
        return self._server is not None

    async def start(self) -> None:
        """Listen (on a new port the first time, on the same port after a cut)."""
        if self._server is not None:
            return
        self._server = await asyncio.start_server(self._accept, LOOPBACK, self._port)
        self._port = self._server.sockets[0].getsockname()[1]

    async def restore(self) -> None:
        await self.start()

    async def cut(self) -> None:
        """Refuse new connections and break the open ones."""
        if self._server is not None:
            server, self._server = self._server, None
            server.close()
        for transport in list(self._transports):
            transport.abort()
        if self._pipes:
            await asyncio.wait(list(self._pipes))

    async def aclose(self) -> None:
        await self.cut()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self._pipes.add(task)
        transports = [writer.transport]
        self._transports.update(transports)
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
            transports.append(up_writer.transport)
            self._transports.add(up_writer.transport)
            # Either direction ending (EOF or error) ends the connection, as a broker would.
            pumps = [
                asyncio.create_task(_pump(reader, up_writer)),
                asyncio.create_task(_pump(up_reader, writer)),
            ]
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
            for pump in pumps:
                pump.cancel()
            await asyncio.wait(pumps)
        except OSError:
            pass
        finally:
            for transport in transports:
                transport.abort()
                self._transports.discard(transport)
            self._pipes.discard(task)


async def _pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        while data := await source.read(_CHUNK):
            sink.write(data)
            await sink.drain()
