"""Tells CUBE about received data: the :class:`StorageObserver` that drives NATS and Celery.

Per association and per series, it counts stored instances, announces progress on the
series' NATS subject within the rate rules of contract §4, and when the association ends
sends the final count and ``done``, then queues one ``register_pacs_series`` task (§5) in
the durable outbox, built from the first instance of the series in that association.
Two associations sending the same series keep separate counts, as CUBE expects.

The observer methods only update dictionaries and queue messages; all I/O happens in the
publishers' background tasks, so they never block the event loop.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import time
from collections.abc import Awaitable, Callable, Generator
from pathlib import Path
from typing import Any

import attrs

from oxidicom.cube import lonk
from oxidicom.cube.amqp_publisher import AmqpPublisher
from oxidicom.cube.celery_message import SeriesRegistration, clean_text, registration_message
from oxidicom.cube.nats_publisher import LonkPublisher, lonk_publisher
from oxidicom.cube.outbox import Outbox, OutboxClosedError
from oxidicom.cube.progress import ProgressLimiter
from oxidicom.storage.events import (
    AssociationEnded,
    AssociationInfo,
    InstanceRejected,
    InstanceStored,
)

log = logging.getLogger(__name__)

OUTBOX_SUBDIR = Path(".oxidicom", "outbox")
"""Default outbox location, relative to FILES_ROOT."""

_SeriesKey = tuple[str, str]
"""(association ULID, SeriesInstanceUID)."""


@attrs.define
class _Series:
    subject: str
    first: InstanceStored | None = None
    """First instance stored in this association: the source of the registration kwargs."""


@attrs.define
class _Association:
    info: AssociationInfo
    series: dict[str, _Series] = attrs.Factory(dict)
    """By SeriesInstanceUID, in the order first seen."""


class CubeNotifier:
    """NATS progress and Celery registration for everything the storage SCP reports."""

    def __init__(
        self,
        *,
        lonk_publisher: LonkPublisher,
        outbox: Outbox,
        amqp: AmqpPublisher | None,
        root_subject: str = "oxidicom",
        progress_interval: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
        fsync: bool = True,
    ) -> None:
        self._lonk = lonk_publisher
        self._outbox = outbox
        self._fsync = fsync
        self._amqp = amqp
        self._root_subject = root_subject
        self._limiter: ProgressLimiter[_SeriesKey] = ProgressLimiter(progress_interval)
        self._clock = clock
        self._associations: dict[str, _Association] = {}

    @classmethod
    def create(
        cls,
        *,
        amqp_address: str,
        queue_name: str,
        files_root: str | os.PathLike[str],
        outbox_dir: str | os.PathLike[str] | None = None,
        nats_address: str | None = None,
        root_subject: str = "oxidicom",
        progress_interval: float = 0.5,
        dev_sleep: float | None = None,
        fsync: bool = True,
        outbox_on_loop: bool = False,
    ) -> CubeNotifier:
        """The production wiring: NATS (if an address is given), outbox and RabbitMQ.

        The outbox defaults to ``{files_root}/.oxidicom/outbox``: on the same storage as
        the data, so that every replica sharing the storage shares the outbox too.
        """
        outbox = Outbox(
            outbox_dir if outbox_dir is not None else Path(files_root, OUTBOX_SUBDIR),
            write_on_loop=outbox_on_loop,
        )
        return cls(
            lonk_publisher=lonk_publisher(nats_address, dev_sleep=dev_sleep),
            outbox=outbox,
            amqp=AmqpPublisher(amqp_address, queue_name, outbox),
            root_subject=root_subject,
            progress_interval=progress_interval,
            fsync=fsync,
        )

    @property
    def outbox(self) -> Outbox:
        return self._outbox

    async def start(self) -> None:
        """Open the outbox (taking over what dead replicas left) and start publishing."""
        await self._outbox.open()
        self._lonk.start()
        if self._amqp is not None:
            self._amqp.start()

    async def aclose(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109 (a grace period)
        """Flush NATS and deliver the outbox for at most ``timeout`` seconds, then stop.

        Undelivered registrations stay on disk for the next start.
        """
        if self._associations:
            log.warning("closing with %d association(s) still open", len(self._associations))
        closing = [self._lonk.aclose(timeout)]
        if self._amqp is not None:
            closing.append(self._amqp.aclose(timeout))
        await asyncio.gather(*closing)
        await self._outbox.aclose(timeout)

    # -- StorageObserver ------------------------------------------------------------------

    def association_started(self, info: AssociationInfo) -> None:
        self._associations.setdefault(info.association_id, _Association(info))

    def instance_stored(self, event: InstanceStored) -> None:
        association = self._association(event.association)
        uid = _series_uid(event.tags.SeriesInstanceUID)
        series = self._series(association, uid)
        if series.first is None:
            series.first = event
        key = (association.info.association_id, uid)
        count = self._limiter.stored(key, self._clock())
        if count is not None:
            self._lonk.publish(
                series.subject,
                lonk.progress(count),
                optional=True,
                on_done=functools.partial(self._progress_left, key),
            )

    def instance_rejected(self, event: InstanceRejected) -> None:
        association = self._association(event.association)
        uid = _series_uid(event.series_instance_uid)
        if uid == lonk.UNKNOWN_SERIES:
            subject = self._subject(association.info, uid)
        else:  # a series seen: it gets its final count and done like the others
            subject = self._series(association, uid).subject
        self._lonk.publish(subject, lonk.error(event.reason))

    def association_ended(self, event: AssociationEnded) -> Awaitable[None] | None:
        """Final progress and done for each series, then its registration into the outbox;
        awaiting what it returns waits until those registrations are in their files, and
        with ``fsync`` (the constructor's) also flushed to disk. None: nothing to wait for."""
        association = self._associations.pop(event.association.association_id, None)
        if association is None:
            return None
        registered = False
        for uid, series in association.series.items():
            count = self._limiter.finish((association.info.association_id, uid))
            self._lonk.publish(series.subject, lonk.progress(count))
            self._lonk.publish(series.subject, lonk.DONE)
            if series.first is not None and count > 0:
                registered |= self._register(series.first, count)
        if not registered or self._outbox.flushed(synced=self._fsync):
            return None
        return _Flushed(self._outbox, synced=self._fsync)

    # -- internals ------------------------------------------------------------------------

    def _association(self, info: AssociationInfo) -> _Association:
        association = self._associations.get(info.association_id)
        if association is None:
            association = self._associations[info.association_id] = _Association(info)
        return association

    def _series(self, association: _Association, uid: str) -> _Series:
        series = association.series.get(uid)
        if series is None:
            series = association.series[uid] = _Series(self._subject(association.info, uid))
        return series

    def _subject(self, info: AssociationInfo, uid: str) -> str:
        return lonk.subject(self._root_subject, info.calling_aet.strip(), uid)

    def _progress_left(self, key: _SeriesKey) -> None:
        self._limiter.sent(key, self._clock())

    def _register(self, first: InstanceStored, ndicom: int) -> bool:
        """Put the series' registration into the outbox; whether it went in."""
        try:
            registration = SeriesRegistration.of_series(first, ndicom)
            message = registration_message(registration)
            self._outbox.put(message.to_json())
        except (ValueError, OutboxClosedError):
            log.exception(
                "series %s from %s (%d instance(s)) cannot be registered",
                first.tags.SeriesInstanceUID,
                first.association.calling_aet,
                ndicom,
            )
            return False
        log.info(
            "series %s from %s: %d instance(s), registration task %s queued",
            registration.SeriesInstanceUID,
            registration.pacs_name,
            ndicom,
            message.task_id,
        )
        return True


class _Flushed:
    """Awaiting it waits for :meth:`Outbox.flush`; ignoring it costs nothing (a bare
    coroutine would warn that it was never awaited, e.g. after an abort, which nobody
    answers)."""

    def __init__(self, outbox: Outbox, *, synced: bool) -> None:
        self._outbox = outbox
        self._synced = synced

    def __await__(self) -> Generator[Any, None, None]:
        return self._outbox.flush(synced=self._synced).__await__()


def _series_uid(value: str | None) -> str:
    return clean_text(value) or lonk.UNKNOWN_SERIES
