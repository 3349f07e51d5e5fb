from __future__ import annotations

import asyncio
import datetime
import itertools
import json
from collections import deque
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Literal

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oxidicom.cube import lonk
from oxidicom.cube.amqp_publisher import AmqpPublisher
from oxidicom.cube.nats_publisher import NatsPublisher, NullPublisher
from oxidicom.cube.notifier import CubeNotifier
from oxidicom.cube.outbox import Outbox
from oxidicom.storage.events import (
    AssociationEnded,
    AssociationInfo,
    InstanceRejected,
    InstanceStored,
    InstanceTags,
    StorageObserver,
)
from tests.cube.hanging_flush import HangingFlush
from tests.peers.amqp_nats_proxy import BrokerProxy
from tests.peers.celery_worker import CeleryWorker, RegisteredTask
from tests.peers.nats_lonk_subscriber import LonkRecorder, assert_lonk_series

STUDY_UID = "1.2.826.0.1.3680043.2.1143.7"


def association(aet: str, number: int = 0) -> AssociationInfo:
    return AssociationInfo(f"01J{aet}{number:04d}", aet, "ChRIS", "127.0.0.1", 40000 + number)


def stored(
    info: AssociationInfo, series: str, instance: int, *, name: str = "Jane^Doe"
) -> InstanceStored:
    folder = f"SERVICES/PACS/{info.calling_aet}/P1-Jane_Doe-/S-A-20130308/00001-T1-{series[-7:]}"
    return InstanceStored(
        association=info,
        tags=InstanceTags(
            PatientID="P1",
            PatientName=name,
            PatientAge="030Y",
            StudyDate="20130308",
            StudyInstanceUID=STUDY_UID,
            SeriesInstanceUID=series,
            SeriesDescription="T1",
            SOPInstanceUID=f"{series}.{instance}",
            InstanceNumber=str(instance),
        ),
        study_date=datetime.date(2013, 3, 8),
        series_folder=folder,
        file_path=f"{folder}/{instance:04d}-{series}.{instance}.dcm",
        size=1000,
    )


def rejected(info: AssociationInfo, series: str | None, reason: str) -> InstanceRejected:
    return InstanceRejected(info, series, reason, status=0xA900)


def ended(info: AssociationInfo, outcome: str = "released") -> AssociationEnded:
    return AssociationEnded(info, outcome)


# -- the rules, on arbitrary interleavings, with a publisher we complete by hand -----------


@attrs.frozen
class Sent:
    subject: str
    message: lonk.Message
    optional: bool
    queued_at: float
    left_at: float


class ManualPublisher:
    """A FIFO publisher like NatsPublisher, whose messages leave only when told to."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self.queue: deque[tuple[str, bytes, bool, Callable[[], None] | None, float]] = deque()
        self.sent: list[Sent] = []

    def publish(
        self,
        subject: str,
        payload: bytes,
        *,
        optional: bool = False,
        on_done: Callable[[], None] | None = None,
    ) -> None:
        self.queue.append((subject, payload, optional, on_done, self._clock()))

    def deliver(self, count: int) -> None:
        for _ in range(min(count, len(self.queue))):
            subject, payload, optional, on_done, queued_at = self.queue.popleft()
            self.sent.append(
                Sent(subject, lonk.decode(payload), optional, queued_at, self._clock())
            )
            if on_done is not None:
                on_done()

    def start(self) -> None:
        pass

    async def aclose(self, timeout: float = 5.0) -> None:
        pass


AETS = ("PACSA", "PACSB", "PACSC")
SERIES = ("1.2.3.1", "1.2.3.2")
INTERVAL = 0.5

Step = (
    tuple[Literal["stored"], int, int]
    | tuple[Literal["rejected"], int, int | None]
    | tuple[Literal["tick"], float]
    | tuple[Literal["deliver"], int]
    | tuple[Literal["end"], int]
)
steps = st.lists(
    st.one_of(
        st.tuples(st.just("stored"), st.integers(0, 2), st.integers(0, 1)),
        st.tuples(st.just("rejected"), st.integers(0, 2), st.none() | st.integers(0, 1)),
        st.tuples(st.just("tick"), st.floats(0.0, 0.4)),
        st.tuples(st.just("deliver"), st.integers(1, 3)),
        st.tuples(st.just("end"), st.integers(0, 2)),
    ),
    max_size=120,
)


@settings(deadline=None)
@given(steps)
def test_lonk_rules_hold_for_any_interleaving(script: list[Step]) -> None:
    now = [0.0]
    publisher = ManualPublisher(lambda: now[0])
    outbox = Outbox("never-opened")  # puts are only counted: nothing touches the disk
    notifier = CubeNotifier(
        lonk_publisher=publisher,
        outbox=outbox,
        amqp=None,
        progress_interval=INTERVAL,
        clock=lambda: now[0],
    )
    infos = [association(aet) for aet in AETS]
    open_ = [True, True, True]
    stored_counts: dict[tuple[int, int], int] = {}
    errors: dict[str, int] = {}
    seen: set[tuple[int, int]] = set()
    for info in infos:
        notifier.association_started(info)
    for step in script:
        match step:
            case ("stored", a, s) if open_[a]:
                notifier.instance_stored(stored(infos[a], SERIES[s], 1))
                stored_counts[a, s] = stored_counts.get((a, s), 0) + 1
                seen.add((a, s))
            case ("rejected", a, s) if open_[a]:
                uid = None if s is None else SERIES[s]
                notifier.instance_rejected(rejected(infos[a], uid, "bad"))
                subject = lonk.subject("oxidicom", AETS[a], uid or "UNKNOWN")
                errors[subject] = errors.get(subject, 0) + 1
                if s is not None:
                    seen.add((a, s))
            case ("tick", dt):
                now[0] += dt
            case ("deliver", n):
                publisher.deliver(n)
            case ("end", a) if open_[a]:
                notifier.association_ended(ended(infos[a]))
                open_[a] = False
    for a, info in enumerate(infos):
        if open_[a]:
            notifier.association_ended(ended(info, "aborted"))
    publisher.deliver(len(publisher.queue))

    by_subject: dict[str, list[Sent]] = {}
    for sent in publisher.sent:
        by_subject.setdefault(sent.subject, []).append(sent)
    for a, s in seen:
        subject = lonk.subject("oxidicom", AETS[a], SERIES[s])
        messages = by_subject.pop(subject)
        final = stored_counts.get((a, s), 0)
        assert_lonk_series([m.message for m in messages], final=final)
        assert sum(isinstance(m.message, lonk.Error) for m in messages) == errors.get(subject, 0)
        optional = [m for m in messages if m.optional]
        for previous, following in itertools.pairwise(optional):
            assert following.queued_at >= previous.left_at, "announced while one was in flight"
            assert following.queued_at - previous.left_at >= INTERVAL, "announced too soon"
        assert all(not m.optional for m in messages[-2:])
    for subject, messages in by_subject.items():  # only UNKNOWN subjects are left: errors
        assert subject.endswith(".UNKNOWN")
        assert [m.message for m in messages] == [lonk.Error("bad")] * errors[subject]
    assert len(outbox) == sum(1 for count in stored_counts.values() if count)


# -- against the real NATS, RabbitMQ and Celery ----------------------------------------------


@pytest.fixture
async def recorder(nats_address: str, unique: str) -> AsyncIterator[LonkRecorder]:
    recorder = await LonkRecorder.subscribe(nats_address, f"oxi{unique}.>")
    yield recorder
    await recorder.aclose()


def tasks_of(aet: str) -> Callable[[RegisteredTask], bool]:
    return lambda task: task.kwargs["pacs_name"] == aet


@pytest.mark.interop
async def test_notifier_with_real_nats_and_celery(
    tmp_path: Path,
    nats_address: str,
    amqp_url: str,
    celery_worker: CeleryWorker,
    recorder: LonkRecorder,
    unique: str,
) -> None:
    root = f"oxi{unique}"
    outbox = Outbox(tmp_path / "outbox")
    notifier = CubeNotifier(
        lonk_publisher=NatsPublisher(nats_address),
        outbox=outbox,
        amqp=AmqpPublisher(amqp_url, celery_worker.queue, outbox),
        root_subject=root,
        progress_interval=0.0,
    )
    await notifier.start()
    aet_a, aet_b = f"A{unique}", f"B{unique}"
    s1, s2, s3 = "1.2.840.1.1", "1.2.840.1.2", "1.2.840.1.3"
    a = association(aet_a, 1)
    b = association(aet_b, 2)  # sends s1 too, at the same time: its own counts
    c = association(aet_a, 3)  # same AE and series as d, at the same time
    d = association(aet_a, 4)
    for info in (a, b, c, d):
        notifier.association_started(info)
    notifier.instance_stored(stored(a, s1, 1, name="First^Instance"))
    notifier.instance_stored(stored(b, s1, 1))
    notifier.instance_rejected(rejected(a, s1, "Missing StudyDate"))
    notifier.instance_rejected(rejected(a, None, "Missing SeriesInstanceUID"))
    for n in range(2, 5):
        notifier.instance_stored(stored(b, s1, n))
        notifier.instance_stored(stored(a, s2, n, name="Other"))
        notifier.instance_stored(stored(c, s3, n))
        notifier.instance_stored(stored(d, s3, n))
    notifier.instance_stored(stored(a, s1, 2, name="Second^Instance"))
    notifier.instance_stored(stored(d, s3, 5))
    for info in (a, b, c, d):
        notifier.association_ended(ended(info))

    def subject(aet: str, uid: str) -> str:
        return lonk.subject(root, aet, uid)

    await recorder.wait_until(
        lambda r: r.done(subject(aet_a, s1)) and r.done(subject(aet_a, s2))
        and r.done(subject(aet_b, s1)) and r.done(subject(aet_a, s3), times=2)
    )  # fmt: skip
    tasks = await celery_worker.wait_for_tasks(4, where=tasks_of(aet_a))
    [task_b] = await celery_worker.wait_for_tasks(1, where=tasks_of(aet_b))
    await notifier.aclose()

    messages = recorder.messages
    assert_lonk_series(messages[subject(aet_a, s1)], final=2)
    assert lonk.Error("Missing StudyDate") in messages[subject(aet_a, s1)]
    assert messages[subject(aet_a, "UNKNOWN")] == [lonk.Error("Missing SeriesInstanceUID")]
    assert_lonk_series(messages[subject(aet_a, s2)], final=3)
    assert_lonk_series(messages[subject(aet_b, s1)], final=4)
    shared = messages[subject(aet_a, s3)]  # c and d: one subject, two associations
    finals = [shared[i - 1] for i, message in enumerate(shared) if message == lonk.Done()]
    assert finals == [lonk.Progress(3), lonk.Progress(4)]

    by_series = {(t.kwargs["SeriesInstanceUID"], t.kwargs["ndicom"]): t.kwargs for t in tasks}
    assert set(by_series) == {(s1, 2), (s2, 3), (s3, 3), (s3, 4)}
    first = stored(a, s1, 1, name="First^Instance")
    assert by_series[s1, 2] == {
        "PatientID": "P1",
        "StudyDate": "2013-03-08",
        "StudyInstanceUID": STUDY_UID,
        "SeriesInstanceUID": s1,
        "pacs_name": aet_a,
        "path": first.series_folder,
        "ndicom": 2,
        "PatientName": "First^Instance",
        "PatientBirthDate": None,
        "PatientAge": 10957,
        "PatientSex": None,
        "AccessionNumber": None,
        "Modality": None,
        "ProtocolName": None,
        "StudyDescription": None,
        "SeriesDescription": "T1",
    }
    assert task_b.kwargs["ndicom"] == 4
    assert task_b.kwargs["SeriesInstanceUID"] == s1


@pytest.mark.interop
async def test_registrations_wait_on_disk_for_the_next_start(
    tmp_path: Path, celery_worker: CeleryWorker, unique: str
) -> None:
    """Broker down until shutdown: the registration is delivered by the next process."""
    proxy = BrokerProxy(5672)
    await proxy.start()
    await proxy.cut()
    files_root = tmp_path / "files"
    aet = f"R{unique}"
    info = association(aet)

    down = CubeNotifier.create(
        amqp_address=proxy.url("amqp"), queue_name=celery_worker.queue, files_root=files_root
    )
    await down.start()
    down.association_started(info)
    for n in range(1, 4):
        down.instance_stored(stored(info, "1.2.840.9", n))
    down.association_ended(ended(info))
    await down.aclose(timeout=0.5)
    [waiting] = (files_root / ".oxidicom" / "outbox").rglob("*.json")
    assert json.loads(json.loads(waiting.read_bytes())["body"])[1]["ndicom"] == 3

    up = CubeNotifier.create(
        amqp_address="amqp://127.0.0.1:5672", queue_name=celery_worker.queue, files_root=files_root
    )
    await up.start()
    [task] = await celery_worker.wait_for_tasks(1, where=tasks_of(aet))
    await up.aclose()
    await proxy.aclose()
    assert task.kwargs["ndicom"] == 3
    assert list((files_root / ".oxidicom" / "outbox").rglob("*.json")) == []


async def test_without_nats_only_registrations_are_sent(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path)
    notifier = CubeNotifier(lonk_publisher=NullPublisher(), outbox=outbox, amqp=None)
    observer: StorageObserver = notifier  # what the storage SCP takes (checked by mypy)
    await notifier.start()
    info = association("NONATS")
    observer.association_started(info)
    observer.instance_stored(stored(info, "1.2.3", 1))
    observer.instance_rejected(rejected(info, "1.2.4", "Missing PatientID"))
    observer.association_ended(ended(info, "aborted"))
    entry = await outbox.first()
    kwargs = json.loads(json.loads(entry.payload)["body"])[1]
    assert (kwargs["SeriesInstanceUID"], kwargs["ndicom"]) == ("1.2.3", 1)
    assert len(outbox) == 1  # nothing for 1.2.4: no instance of it was stored
    await notifier.aclose(timeout=1)


async def test_events_of_an_unknown_association_are_still_counted(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path)
    notifier = CubeNotifier(lonk_publisher=NullPublisher(), outbox=outbox, amqp=None)
    await notifier.start()
    info = association("LATE")
    notifier.instance_stored(stored(info, "1.2.3", 1))  # association_started never came
    notifier.association_ended(ended(info))
    notifier.association_ended(ended(info))  # a second end is ignored
    await outbox.flush()
    assert len(outbox) == 1
    await notifier.aclose(timeout=1)


@pytest.mark.parametrize("fsync", [True, False])
async def test_the_end_of_an_association_waits_for_the_flush_only_with_fsync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fsync: bool
) -> None:
    outbox = Outbox(tmp_path)
    notifier = CubeNotifier(lonk_publisher=NullPublisher(), outbox=outbox, amqp=None, fsync=fsync)
    await notifier.start()
    hang = HangingFlush(outbox, monkeypatch)
    info = association("FSYNC")
    notifier.association_started(info)
    notifier.instance_stored(stored(info, "1.2.3", 1))
    settled = notifier.association_ended(ended(info))
    assert settled is not None
    waiting = asyncio.ensure_future(settled)
    try:
        await hang.reached()  # in its file, and its flush hangs
        assert len(list(tmp_path.rglob("*.json"))) == 1
        if fsync:
            await asyncio.sleep(0)  # the waiter runs, and waits
            assert not waiting.done()
        else:
            await asyncio.wait_for(waiting, 5)
    finally:
        hang.release()
    await asyncio.wait_for(waiting, 5)
    await notifier.aclose(timeout=1)


async def test_with_the_outbox_on_the_loop_a_release_has_nothing_to_wait_for(
    tmp_path: Path,
) -> None:
    outbox = Outbox(tmp_path, write_on_loop=True)
    notifier = CubeNotifier(lonk_publisher=NullPublisher(), outbox=outbox, amqp=None, fsync=False)
    await notifier.start()
    info = association("ONLOOP")
    notifier.association_started(info)
    notifier.instance_stored(stored(info, "1.2.3", 1))
    assert notifier.association_ended(ended(info)) is None
    [file] = tmp_path.rglob("*.json")  # in its file already
    assert json.loads(json.loads(file.read_bytes())["body"])[1]["ndicom"] == 1
    await notifier.aclose(timeout=1)
