"""Delivers the outbox's Celery task messages to RabbitMQ, in order, for as long as it takes.

The receiver must keep accepting DICOM while RabbitMQ is down, so delivery runs in the
background: connect (with exponential backoff, forever), declare the queue exactly as
Celery declares a default queue, then publish the outbox's oldest entry and remove it
only once the broker has confirmed it. A message the broker returns (``mandatory``: no
queue to route it to) or refuses (``nack``) stays in the outbox and is tried again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Final

import aio_pika
import aio_pika.abc
import aio_pika.exceptions
import yarl

from oxidicom.cube.celery_message import CeleryTaskMessage
from oxidicom.cube.outbox import Outbox, OutboxClosedError, OutboxEntry
from oxidicom.log_throttle import LogThrottle

log = logging.getLogger(__name__)

_YIELD_TO_RELEASE: Final = 0.001
"""Seconds a registration that was just written waits before it is published."""
_UNREACHABLE: Final = (
    aio_pika.exceptions.AMQPError,
    aio_pika.exceptions.ChannelInvalidStateError,
    ConnectionError,
    OSError,
    TimeoutError,
)


def redacted(url: str) -> str:
    """The AMQP URL with its password masked, for logs."""
    parsed = yarl.URL(url)
    return str(parsed.with_password("***")) if parsed.password else url


def amqp_message(message: CeleryTaskMessage) -> aio_pika.Message:
    """The AMQP message Celery would publish: properties and headers of protocol 2."""
    return aio_pika.Message(
        body=message.body,
        headers=dict(message.headers),
        content_type=message.content_type,
        content_encoding=message.content_encoding,
        delivery_mode=aio_pika.DeliveryMode(message.delivery_mode),
        priority=message.priority,
        correlation_id=message.correlation_id,
    )


class AmqpPublisher:
    """Background delivery of an :class:`Outbox` to one RabbitMQ queue."""

    def __init__(
        self,
        url: str,
        queue: str,
        outbox: Outbox,
        *,
        connect_timeout: float = 10.0,
        confirm_timeout: float = 30.0,
        retry_min: float = 0.5,
        retry_max: float = 30.0,
        recover_interval: float = 60.0,
        warn_interval: float = 30.0,
    ) -> None:
        self.url = url
        self.queue = queue
        self._outbox = outbox
        self._connect_timeout = connect_timeout
        self._confirm_timeout = confirm_timeout
        self._retry_min = retry_min
        self._retry_max = retry_max
        self._recover_interval = recover_interval
        self._unreachable = LogThrottle(warn_interval)
        self._refused = LogThrottle(warn_interval)
        self._task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self.delivered = 0
        """Messages confirmed by the broker since start."""

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    async def wait_connected(self) -> None:
        await self._connected.wait()

    def start(self) -> None:
        if self._task is not None:
            raise RuntimeError("AmqpPublisher already started")
        self._task = asyncio.create_task(self._run(), name=f"amqp-publisher-{self.queue}")

    async def aclose(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109 (a grace period)
        """Give delivery up to ``timeout`` seconds to empty the outbox, then stop.

        Whatever is left stays in the outbox for the next start (or another replica).
        """
        if self._task is None:
            return
        task, self._task = self._task, None
        if self.connected and len(self._outbox):
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._outbox.wait_empty()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if left := len(self._outbox):
            log.warning("AMQP: %d registration(s) not delivered yet; they stay in the outbox", left)

    # -- the delivery loop ----------------------------------------------------------------

    async def _run(self) -> None:
        delay = self._retry_min
        while True:
            try:
                async with await aio_pika.connect(self.url, timeout=self._connect_timeout) as conn:
                    channel = await self._open_channel(conn)
                    log.info(
                        "AMQP: connected to %s, delivering to queue %r (%d waiting)",
                        redacted(self.url),
                        self.queue,
                        len(self._outbox),
                    )
                    self._unreachable.reset()
                    delay = self._retry_min
                    self._connected.set()
                    await self._deliver(channel)
            except OutboxClosedError:
                return
            except _UNREACHABLE as e:
                self._report_unreachable(e)
            except Exception:
                # Never let delivery die: whatever it was, log it and start over.
                log.exception("AMQP: unexpected error; reconnecting")
            finally:
                self._connected.clear()
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._retry_max)

    async def _open_channel(
        self, connection: aio_pika.abc.AbstractConnection
    ) -> aio_pika.abc.AbstractChannel:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        try:
            # Exactly kombu's default queue: a later declaration by a worker cannot conflict.
            await channel.declare_queue(
                self.queue, durable=True, exclusive=False, auto_delete=False, arguments=None
            )
        except aio_pika.exceptions.ChannelPreconditionFailed as e:
            # The queue exists with other settings (e.g. a quorum queue CUBE declared):
            # it exists, so messages are routed; use it as it is.
            log.warning(
                "AMQP: queue %r exists with other settings (%s); using it as is", self.queue, e
            )
            channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
            await channel.declare_queue(self.queue, passive=True)
        return channel

    async def _deliver(self, channel: aio_pika.abc.AbstractChannel) -> None:
        next_recovery = time.monotonic() + self._recover_interval
        refusals = 0
        while True:
            wait = max(0.0, next_recovery - time.monotonic())
            idle = not self._outbox.ready
            try:
                # asyncio.timeout, not wait_for: on 3.11 wait_for swallows a cancellation
                # that meets an entry becoming ready, and aclose() would wait for ever.
                async with asyncio.timeout(wait):
                    entry = await self._outbox.first()
            except TimeoutError:
                await self._outbox.recover()
                next_recovery = time.monotonic() + self._recover_interval
                continue
            if idle:
                # Just flushed, perhaps for a release that waits for that (OXIDICOM_FSYNC)
                # and is woken by the same flush: let its A-RELEASE-RP go out (a few
                # callbacks away) before this publish takes the event loop for a fraction
                # of a ms.
                await asyncio.sleep(_YIELD_TO_RELEASE)
            if await self._publish(channel, entry):
                refusals = 0
                continue
            refusals = min(refusals + 1, 32)
            await asyncio.sleep(min(self._retry_min * 2**refusals, self._retry_max))

    async def _publish(self, channel: aio_pika.abc.AbstractChannel, entry: OutboxEntry) -> bool:
        """Try to deliver one entry; ``True`` if it is done with (delivered or unreadable)."""
        try:
            message = CeleryTaskMessage.from_json(entry.payload)
        except ValueError:
            log.exception("outbox entry %s is unreadable, moved to quarantine", entry.name)
            await self._outbox.quarantine(entry)
            return True
        try:
            await channel.default_exchange.publish(
                amqp_message(message),
                routing_key=self.queue,
                mandatory=True,
                timeout=self._confirm_timeout,
            )
        except aio_pika.exceptions.PublishError:
            self._report_refused(message, "returned: queue %r does not exist; declaring it")
            await channel.declare_queue(
                self.queue, durable=True, exclusive=False, auto_delete=False, arguments=None
            )
            return False
        except aio_pika.exceptions.DeliveryError:
            self._report_refused(message, "refused by the broker (nack) for queue %r")
            return False
        await self._outbox.remove(entry)
        self.delivered += 1
        self._refused.reset()
        log.info(
            "AMQP: sent task %s %s to queue %r", message.task_name, message.task_id, self.queue
        )
        return True

    def _report_unreachable(self, error: BaseException) -> None:
        if (held_back := self._unreachable.ready()) is not None:
            log.warning(
                "AMQP: broker %s unreachable (%s); %d registration(s) waiting in the outbox "
                "(%d similar messages suppressed)",
                redacted(self.url),
                str(error) or type(error).__name__,
                len(self._outbox),
                held_back,
            )

    def _report_refused(self, message: CeleryTaskMessage, reason: str) -> None:
        if (held_back := self._refused.ready()) is not None:
            log.warning(
                "AMQP: task %s " + reason + ", will retry (%d similar messages suppressed)",
                message.task_id,
                self.queue,
                held_back,
            )
