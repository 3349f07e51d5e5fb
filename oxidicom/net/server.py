"""An asyncio DICOM server: listens, admits associations, serves them with an Application.

Each accepted TCP connection gets an :class:`~oxidicom.net.acceptor.AcceptorProtocol`; at most
``max_associations`` are *established* at once (the rest wait for a slot, boundedly; see
:mod:`oxidicom.net.slots`) and at most ``max_associations_per_peer`` per peer address.
Connections are bounded before they say anything: at most ``max_connections`` in all and
twice ``max_associations_per_peer`` from one address; more are closed at once. Until its
A-ASSOCIATE-RQ is complete a connection holds a file descriptor and up to 1 MiB of request
for up to the ARTIM time, so silent or slow connections must not be free to multiply.
``close(grace)`` stops accepting, lets associations in flight finish for ``grace`` seconds,
then aborts the rest and waits until every handler has been told.

Several processes can serve one port: with ``shared_port`` (one socket inherited by all of
them, least busy first: see :mod:`oxidicom.net.shared_listener`) or with ``reuse_port`` (a
socket each, spread by the kernel's hash).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import socket
import ssl
from collections.abc import Iterable
from typing import Any

import attrs

from oxidicom.log_throttle import LogThrottle
from oxidicom.net.acceptor import AcceptorProtocol
from oxidicom.net.handlers import Application, AssociationContext, Outcome, Peer
from oxidicom.net.shared_listener import SharedListener, SharedPort
from oxidicom.net.slots import SlotPool
from oxidicom.ul.constants import (
    REASON_PRESENTATION_LOCAL_LIMIT,
    RejectResult,
    RejectSource,
)
from oxidicom.ul.pdus import AAssociateRJ

log = logging.getLogger("oxidicom.net")

_REFUSAL_LOG_INTERVAL = 10.0


@attrs.frozen
class ServerConfig:
    host: str = "0.0.0.0"  # noqa: S104 - a receiver listens on all interfaces by default
    port: int = 11111
    max_associations: int = 8
    """Associations served at once (``OXIDICOM_LISTENER_THREADS``)."""
    slot_wait_timeout: float = 20.0
    """How long an association beyond ``max_associations`` waits before A-ASSOCIATE-RJ."""
    slot_wait_queue: int = 256
    """How many may wait at once; more are rejected at once."""
    max_associations_per_peer: int = 0
    """Established associations per peer IP address (0: no limit); that peer's connections
    are limited to twice as many."""
    max_connections: int = 1024
    """TCP connections open at once, associated or not; more are closed at once."""
    artim_timeout: float = 30.0
    idle_timeout: float | None = 60.0
    strict_max_length: bool = False
    receive_buffer_size: int = 1024 * 1024
    """Per-connection receive buffer: one read can carry many PDUs, and the data set bytes of
    several reads are written to disk together."""
    ssl: ssl.SSLContext | None = None
    ssl_handshake_timeout: float = 30.0
    reuse_port: bool = False
    """SO_REUSEPORT: several processes, each with its own socket on the port."""
    backlog: int = 1024
    shared_port: SharedPort | None = None
    """This process's place at a listening socket other processes serve too
    (``OXIDICOM_WORKERS``): connections go to the least busy. ``host``, ``port``,
    ``reuse_port`` and ``backlog`` are then unused. :meth:`close` closes this process's
    descriptor; the socket listens on while another process holds one."""


class DicomServer:
    def __init__(self, app: Application, config: ServerConfig | None = None) -> None:
        self.app = app
        self.config = config or ServerConfig()
        self.slots = SlotPool(self.config.max_associations, self.config.slot_wait_queue)
        self._server: asyncio.Server | None = None
        self._listener: SharedListener | None = None
        self._handshakes = 0
        """Connections accepted from the shared socket and not yet made (TLS handshake)."""
        self._adopting: set[asyncio.Task[None]] = set()
        self._stopped = asyncio.Event()
        self._connections: set[AcceptorProtocol] = set()
        self._per_peer: collections.Counter[str] = collections.Counter()
        """Associations admitted, by peer address."""
        self._connections_per_peer: collections.Counter[str] = collections.Counter()
        self._refusals = LogThrottle(_REFUSAL_LOG_INTERVAL)
        """A flood of connections must not flood the log too."""
        self._grace_cut = asyncio.Event()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        config = self.config
        if config.shared_port is not None:
            self._listener = SharedListener(
                config.shared_port,
                self._adopt,
                lambda: len(self._connections) + self._handshakes,
            )
            self._listener.start()
            return
        self._server = await loop.create_server(
            lambda: AcceptorProtocol(self),
            host=config.host,
            port=config.port,
            ssl=config.ssl,
            ssl_handshake_timeout=config.ssl_handshake_timeout if config.ssl else None,
            reuse_port=config.reuse_port or None,
            backlog=config.backlog,
        )

    def _adopt(self, conn: socket.socket) -> None:
        """A connection won from the shared socket: make it a connection like any other."""
        self._handshakes += 1
        self._report_load()
        task = asyncio.get_running_loop().create_task(self._connect(conn))
        self._adopting.add(task)
        task.add_done_callback(self._adopting.discard)

    async def _connect(self, conn: socket.socket) -> None:
        config = self.config
        try:
            await asyncio.get_running_loop().connect_accepted_socket(
                lambda: AcceptorProtocol(self),
                conn,
                ssl=config.ssl,
                ssl_handshake_timeout=config.ssl_handshake_timeout if config.ssl else None,
            )
        except OSError as error:  # a failed TLS handshake, or the peer left
            log.debug("connection not made: %s", error)
            conn.close()
        except asyncio.CancelledError:  # closing before the handshake was done
            conn.close()
            raise
        finally:
            self._handshakes -= 1
            self._report_load()

    def _report_load(self) -> None:
        if self._listener is not None:
            self._listener.report()

    @property
    def sockets(self) -> Iterable[tuple[str, int]]:
        if self._listener is not None:
            if self._listener.sock.fileno() < 0:
                return ()
            return [self._listener.sock.getsockname()[:2]]
        if self._server is None:
            return ()
        return [sock.getsockname()[:2] for sock in self._server.sockets]

    @property
    def port(self) -> int:
        """The bound port (useful with ``port=0``)."""
        for _, port in self.sockets:
            return port
        raise RuntimeError("server not started")

    @property
    def connection_count(self) -> int:
        """TCP connections open now (counted against ``max_connections``)."""
        return len(self._connections)

    async def serve_forever(self) -> None:
        if self._server is None and self._listener is None:
            await self.start()
        if self._listener is not None:
            await self._stopped.wait()
            return
        assert self._server is not None
        await self._server.serve_forever()

    async def close(self, grace: float = 30.0) -> None:
        """Stop accepting; give associations in flight ``grace`` seconds (or until
        :meth:`cut_grace`); abort the rest."""
        if self._server is not None:
            self._server.close()
        if self._listener is not None:
            self._listener.close()
            for task in self._adopting:
                task.cancel()
            self._stopped.set()
        if self._connections:
            log.info(
                "waiting up to %gs for %d association(s) to finish", grace, len(self._connections)
            )
            loop = asyncio.get_running_loop()
            deadline = loop.time() + grace
            while self._connections and not self._grace_cut.is_set():
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                cut: asyncio.Future[Any] = asyncio.ensure_future(self._grace_cut.wait())
                waiters: set[asyncio.Future[Any]] = {conn.finished for conn in self._connections}
                await asyncio.wait(
                    {*waiters, cut}, timeout=remaining, return_when=asyncio.FIRST_COMPLETED
                )
                cut.cancel()
            if self._connections:
                log.warning("aborting %d association(s) still running", len(self._connections))
                for conn in list(self._connections):
                    conn.shutdown()
                await asyncio.wait([conn.finished for conn in self._connections], timeout=5)
        if self._server is not None:
            await self._server.wait_closed()

    def cut_grace(self) -> None:
        """End the grace period of a running :meth:`close` now."""
        self._grace_cut.set()

    async def __aenter__(self) -> DicomServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # --- called by AcceptorProtocol --------------------------------------------------------

    def connection_opened(self, connection: AcceptorProtocol, peer: Peer) -> bool:
        """Count a new connection; ``False`` if it is one too many (close it at once)."""
        config = self.config
        per_peer = 2 * config.max_associations_per_peer
        if len(self._connections) >= config.max_connections:
            self._refusal(peer, f"{len(self._connections)} connections open")
            return False
        if per_peer and self._connections_per_peer[peer.host] >= per_peer:
            self._refusal(peer, f"{per_peer} connections open from {peer.host}")
            return False
        self._connections.add(connection)
        self._connections_per_peer[peer.host] += 1
        self._report_load()
        return True

    def _refusal(self, peer: Peer, why: str) -> None:
        if (held_back := self._refusals.ready()) is not None:
            log.warning(
                "connection from %s closed at once: %s (%d similar refusals suppressed)",
                peer.host,
                why,
                held_back,
            )

    def admission_check(self, peer: Peer) -> AAssociateRJ | None:
        """Count an association against its peer's limit, or refuse it."""
        limit = self.config.max_associations_per_peer
        if limit and self._per_peer[peer.host] >= limit:
            return AAssociateRJ(
                RejectResult.REJECTED_TRANSIENT,
                RejectSource.SERVICE_PROVIDER_PRESENTATION,
                REASON_PRESENTATION_LOCAL_LIMIT,
            )
        self._per_peer[peer.host] += 1
        return None

    def admission_done(self, peer: Peer) -> None:
        self._per_peer[peer.host] -= 1
        if self._per_peer[peer.host] <= 0:
            del self._per_peer[peer.host]

    def connection_finished(
        self,
        connection: AcceptorProtocol,
        context: AssociationContext | None,
        outcome: Outcome | None,
        detail: str,
    ) -> None:
        if connection in self._connections:
            self._connections.remove(connection)
            host = connection.peer.host
            self._connections_per_peer[host] -= 1
            if self._connections_per_peer[host] <= 0:
                del self._connections_per_peer[host]
            self._report_load()
        log.debug(
            "connection %s finished: %s (%s)",
            connection.association_id,
            outcome.value if outcome else "no association",
            detail,
        )
