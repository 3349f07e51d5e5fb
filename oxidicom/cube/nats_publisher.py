"""Best-effort publishing of LONK messages to NATS.

Progress messages are a courtesy to the UI: NATS being down at start, or going away later,
must never slow down or stop the reception of DICOM. So :meth:`NatsPublisher.publish` only
appends to a bounded in-memory queue and returns; one background task sends the queue in
order (hence in order per subject) whenever a connection is up, while nats-py reconnects
forever. When the queue is full the oldest *optional* message (an intermediate progress
count) goes first; required ones (errors, final count, done) only when there is nothing
else to drop.

``on_done`` callbacks tell the sender's caller when a message has left (handed to the
client) or was given up; the progress rate limiter waits for it before announcing again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from typing import Final, Protocol

import attrs
import nats.aio.client
import nats.errors

from oxidicom.log_throttle import LogThrottle

log = logging.getLogger(__name__)

DEFAULT_MAX_QUEUED: Final = 10_000


class LonkPublisher(Protocol):
    """Where the notifier sends LONK payloads."""

    def publish(
        self,
        subject: str,
        payload: bytes,
        *,
        optional: bool = False,
        on_done: Callable[[], None] | None = None,
    ) -> None:
        """Queue a message; never blocks. ``on_done`` runs once it left or was dropped."""

    def start(self) -> None: ...

    async def aclose(self, timeout: float = 5.0) -> None: ...  # noqa: ASYNC109


class NullPublisher:
    """What the notifier uses when no NATS address is configured: messages go nowhere."""

    def publish(
        self,
        subject: str,
        payload: bytes,
        *,
        optional: bool = False,
        on_done: Callable[[], None] | None = None,
    ) -> None:
        if on_done is not None:
            on_done()

    def start(self) -> None:
        pass

    async def aclose(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        pass


def nats_url(address: str) -> str:
    """``localhost:4222`` and ``nats://localhost:4222`` both mean the same server."""
    return address if "://" in address else f"nats://{address}"


def lonk_publisher(
    address: str | None, *, dev_sleep: float | None = None, max_queued: int = DEFAULT_MAX_QUEUED
) -> LonkPublisher:
    """A :class:`NatsPublisher` for ``address``, or a :class:`NullPublisher` if unset."""
    if not address:
        return NullPublisher()
    return NatsPublisher(address, dev_sleep=dev_sleep, max_queued=max_queued)


@attrs.frozen
class _Outgoing:
    subject: str
    payload: bytes
    optional: bool
    on_done: Callable[[], None] | None

    def done(self) -> None:
        if self.on_done is not None:
            try:
                self.on_done()
            except Exception:
                log.exception("NATS: on_done callback of %s failed", self.subject)


class NatsPublisher:
    """Sends queued messages to one NATS server, in order, reconnecting forever."""

    def __init__(
        self,
        address: str,
        *,
        max_queued: int = DEFAULT_MAX_QUEUED,
        dev_sleep: float | None = None,
        reconnect_wait: int = 2,
        connect_timeout: int = 2,
        warn_interval: float = 30.0,
    ) -> None:
        if max_queued < 1:
            raise ValueError(f"max_queued must be at least 1, got {max_queued}")
        self.url = nats_url(address)
        self._max_queued = max_queued
        self._dev_sleep = dev_sleep
        self._reconnect_wait = reconnect_wait
        self._connect_timeout = connect_timeout
        self._queue: deque[_Outgoing] = deque()
        self._optional_queued = 0
        self._sending = False
        self._connect_started = False
        self._wakeup = asyncio.Event()
        self._connected = asyncio.Event()
        self._client = nats.aio.client.Client()
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False
        self._dropped = LogThrottle(warn_interval)
        self._errors = LogThrottle(warn_interval)
        self.sent = 0
        """Messages handed to the NATS client since start."""
        self.dropped = 0
        """Messages given up because the queue was full or publishing failed."""

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    async def wait_connected(self) -> None:
        await self._connected.wait()

    def __len__(self) -> int:
        return len(self._queue)

    def start(self) -> None:
        if self._tasks:
            raise RuntimeError("NatsPublisher already started")
        if self._dev_sleep:
            log.warning(
                "NATS: sleeping %g s between LONK messages (OXIDICOM_DEV_SLEEP); "
                "unset it in production",
                self._dev_sleep,
            )
        self._tasks = [
            asyncio.create_task(self._connect(), name="nats-connect"),
            asyncio.create_task(self._send_loop(), name="nats-sender"),
        ]

    def publish(
        self,
        subject: str,
        payload: bytes,
        *,
        optional: bool = False,
        on_done: Callable[[], None] | None = None,
    ) -> None:
        outgoing = _Outgoing(subject, payload, optional, on_done)
        if self._closing:
            self._drop(outgoing, "shutting down")
            return
        if len(self._queue) >= self._max_queued and not self._make_room(outgoing):
            return
        self._queue.append(outgoing)
        self._optional_queued += optional
        self._wakeup.set()

    async def aclose(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109 (a grace period)
        """Send what is queued (if connected) within ``timeout`` seconds, then disconnect."""
        if self._closing:
            return
        self._closing = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        if self.connected:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._drained()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        while self._queue:
            self._drop(self._pop(), "shutting down")
        if self._client.is_connected:
            with contextlib.suppress(nats.errors.Error, TimeoutError, OSError):
                await self._client.flush(max(1, round(deadline - loop.time())))
        if self._connect_started:
            # RuntimeError: under uvloop, nats-py's close writes its pending bytes to a
            # transport that the broken connection has already closed.
            with contextlib.suppress(nats.errors.Error, TimeoutError, OSError, RuntimeError):
                async with asyncio.timeout(max(0.1, deadline - loop.time())):
                    await self._client.close()

    # -- background tasks -----------------------------------------------------------------

    async def _connect(self) -> None:
        # nats-py sets the client up before its first await: from here on, close() works.
        self._connect_started = True
        # With max_reconnect_attempts=-1, nats-py retries the first connection forever too.
        try:
            await self._client.connect(
                servers=[self.url],
                allow_reconnect=True,
                max_reconnect_attempts=-1,
                reconnect_time_wait=self._reconnect_wait,
                connect_timeout=self._connect_timeout,
                error_cb=self._on_error,
                disconnected_cb=self._on_disconnected,
                reconnected_cb=self._on_reconnected,
            )
        except Exception:  # e.g. an address nats-py cannot parse: no progress messages
            log.exception("NATS: cannot connect to %s; progress messages are disabled", self.url)
            return
        log.info("NATS: connected to %s", self.url)
        self._connected.set()

    async def _send_loop(self) -> None:
        while True:
            while not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
            await self._connected.wait()
            outgoing = self._pop()
            self._sending = True
            try:
                await self._client.publish(outgoing.subject, outgoing.payload)
            except Exception as e:  # best effort: a message that cannot go is dropped
                self.dropped += 1
                if (held_back := self._errors.ready()) is not None:
                    log.warning(
                        "NATS: could not publish to %s: %s (%d similar suppressed)",
                        outgoing.subject,
                        e,
                        held_back,
                    )
            else:
                self.sent += 1
            finally:
                self._sending = False
            outgoing.done()
            self._wakeup.set()
            if self._dev_sleep:
                await asyncio.sleep(self._dev_sleep)

    async def _drained(self) -> None:
        while self._queue or self._sending:
            self._wakeup.clear()
            await self._wakeup.wait()

    # -- queue ----------------------------------------------------------------------------

    def _pop(self) -> _Outgoing:
        outgoing = self._queue.popleft()
        self._optional_queued -= outgoing.optional
        return outgoing

    def _make_room(self, incoming: _Outgoing) -> bool:
        """Drop one message to make room for ``incoming``; ``False`` if it is ``incoming``."""
        if self._optional_queued:
            for i, queued in enumerate(self._queue):
                if queued.optional:
                    del self._queue[i]
                    self._optional_queued -= 1
                    self._drop(queued, "queue full")
                    return True
        if incoming.optional:
            self._drop(incoming, "queue full")
            return False
        self._drop(self._pop(), "queue full")
        return True

    def _drop(self, outgoing: _Outgoing, why: str) -> None:
        self.dropped += 1
        if (held_back := self._dropped.ready()) is not None:
            log.warning(
                "NATS: dropped a %s message to %s (%s; %d queued; %d similar messages suppressed)",
                "progress" if outgoing.optional else "required",
                outgoing.subject,
                why,
                len(self._queue),
                held_back,
            )
        outgoing.done()

    # -- nats-py callbacks ----------------------------------------------------------------

    async def _on_error(self, error: Exception) -> None:
        if (held_back := self._errors.ready()) is not None:
            log.warning(
                "NATS: %s: %s (%d similar messages suppressed)",
                self.url,
                str(error) or type(error).__name__,
                held_back,
            )

    async def _on_disconnected(self) -> None:
        if self._connected.is_set() and not self._closing:
            log.warning("NATS: disconnected from %s; reconnecting", self.url)
        self._connected.clear()

    async def _on_reconnected(self) -> None:
        log.info("NATS: reconnected to %s", self.url)
        self._errors.reset()
        self._connected.set()
