"""Progress over NATS (LONK, contract §4), as a subscriber of the real server sees it.

Per series and association: the first stored instance is announced, counts only grow,
the last two messages are the final count and ``done``; ``OXIDICOM_PROGRESS_INTERVAL``
bounds how often the counts in between are sent; an instance the receiver refuses is an
error message on its series' subject, and leaves neither a file nor a registration.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid
from pynetdicom import AE

from oxidicom.cube import lonk
from tests.e2e.checks import files_from
from tests.e2e.cube_contract import expected_file_path, expected_registration, lonk_subject
from tests.e2e.dicom_files import make_instance, write_series
from tests.peers.celery_worker import CeleryWorker
from tests.peers.dcmtk import storescu
from tests.peers.nats_lonk_subscriber import LonkRecorder, assert_lonk_series
from tests.peers.oxidicom_receiver import NATS_ADDRESS, Receiver, ReceiverFactory
from tests.peers.pynetdicom_peer import run_scu

STUDY = {"PatientID": "LONK1", "PatientName": "Lonk^Test", "StudyDate": "20240102"}


def _is_failure(status: int | None) -> bool:
    return status is not None and 0xC000 <= status <= 0xCFFF


async def _recorder(receiver: Receiver, aet: str) -> LonkRecorder:
    return await LonkRecorder.subscribe(NATS_ADDRESS, f"{receiver.root_subject}.{aet}.>")


def _subject(receiver: Receiver, aet: str, series: Dataset | str) -> str:
    uid = series if isinstance(series, str) else str(series.SeriesInstanceUID)
    return lonk_subject(receiver.root_subject, aet, uid)


async def test_long_interval_sends_only_the_first_and_the_final_count(
    own_receiver: ReceiverFactory, tmp_path: Path
) -> None:
    rx = own_receiver(OXIDICOM_PROGRESS_INTERVAL="1h")
    aet = "LONKSLOW"
    sizes = {"five": 5, "three": 3, "one": 1}
    series = {
        name: write_series(tmp_path / name, {**STUDY, "SeriesDescription": name}, count)
        for name, count in sizes.items()
    }
    subjects = {
        name: _subject(rx, aet, dcmread(files[0], stop_before_pixels=True))
        for name, files in series.items()
    }
    recorder = await _recorder(rx, aet)
    try:
        files = [path for paths in series.values() for path in paths]
        result = await asyncio.to_thread(storescu, rx.host, rx.port, files, calling_aet=aet)
        result.check()
        await recorder.wait_until(lambda r: all(r.done(s) for s in subjects.values()))

        assert set(recorder.messages) == set(subjects.values())
        for name, count in sizes.items():
            assert recorder.messages[subjects[name]] == [
                lonk.Progress(1),
                lonk.Progress(count),
                lonk.Done(),
            ], name
    finally:
        await recorder.aclose()


async def test_short_interval_sends_counts_in_between(
    own_receiver: ReceiverFactory,
) -> None:
    """With 5ms between progress messages, counts in between reach the subscriber while
    the association runs. The SCU sends one instance at a time and stops once three such
    counts have arrived (it would give up after ``limit``), so nothing depends on speed."""
    rx = own_receiver(OXIDICOM_PROGRESS_INTERVAL="5ms")
    aet = "LONKFAST"
    tags = {**STUDY, "StudyInstanceUID": generate_uid(), "SeriesInstanceUID": generate_uid()}
    subject = _subject(rx, aet, str(tags["SeriesInstanceUID"]))
    recorder = await _recorder(rx, aet)
    limit = 300

    def in_between() -> list[int]:
        return [
            m.count
            for m in recorder.messages.get(subject, [])
            if isinstance(m, lonk.Progress) and m.count > 1
        ]

    ae = AE(ae_title=aet)
    ae.add_requested_context(MRImageStorage, ExplicitVRLittleEndian)
    association = await asyncio.to_thread(ae.associate, rx.host, rx.port, ae_title="ChRIS")
    try:
        assert association.is_established
        sent = 0
        while len(in_between()) < 3 and sent < limit:
            sent += 1
            instance = make_instance({**tags, "InstanceNumber": str(sent)})
            response = await asyncio.to_thread(association.send_c_store, instance)
            assert response.Status == 0x0000
        await asyncio.to_thread(association.release)
        await recorder.wait_until(lambda r: r.done(subject))

        messages = recorder.messages[subject]
        assert_lonk_series(messages, final=sent)
        assert messages[0] == lonk.Progress(1)
        assert len(in_between()) >= 3, messages
    finally:
        if association.is_established:
            association.abort()
        await recorder.aclose()


async def test_refused_instance_is_an_error_on_its_series(
    rx: Receiver, aet: str, lonk_recorder: LonkRecorder, celery_worker: CeleryWorker
) -> None:
    recorder = lonk_recorder
    tags = {**STUDY, "StudyInstanceUID": generate_uid(), "SeriesInstanceUID": generate_uid()}
    good = [make_instance({**tags, "InstanceNumber": str(n)}) for n in (1, 2)]
    no_date = make_instance({"PatientID": "LONK1"})
    no_series = make_instance(STUDY)
    del no_series.SeriesInstanceUID

    result = await asyncio.to_thread(
        run_scu, rx.host, rx.port, items=[good[0], no_date, no_series, good[1]], calling_aet=aet
    )

    assert result.ending == "released"
    good_status, no_date_status, no_series_status, last_status = result.statuses
    assert (good_status, last_status) == (0x0000, 0x0000)
    assert _is_failure(no_date_status)
    assert _is_failure(no_series_status)
    good_subject = _subject(rx, aet, good[0])
    no_date_subject = _subject(rx, aet, no_date)
    unknown_subject = lonk_subject(rx.root_subject, aet, None)
    # What CUBE's client subscribes to, spelled out.
    uid_token = str(no_date.SeriesInstanceUID).replace(".", "_")
    assert no_date_subject == f"{rx.root_subject}.{aet}.{uid_token}"
    assert unknown_subject.endswith(".UNKNOWN")

    def errors(subject: str) -> list[lonk.Error]:
        return [m for m in recorder.messages.get(subject, []) if isinstance(m, lonk.Error)]

    await recorder.wait_until(
        lambda r: r.done(good_subject) and bool(errors(no_date_subject) and errors(unknown_subject))
    )
    assert recorder.messages[good_subject] == [lonk.Progress(1), lonk.Progress(2), lonk.Done()]
    for subject, missing in (
        (no_date_subject, "StudyDate"),
        (unknown_subject, "SeriesInstanceUID"),
    ):
        [error] = errors(subject)
        assert missing in error.message, error
        # Nothing of that series was stored: no count above zero, ever.
        assert all(
            m.count == 0 for m in recorder.messages[subject] if isinstance(m, lonk.Progress)
        ), recorder.messages[subject]
    assert files_from(rx, aet) == sorted(expected_file_path(aet, ds) for ds in good)
    # Registrations of one association are published together: once the good series'
    # has arrived, a registration of the refused one would have too.
    tasks = await celery_worker.wait_for_tasks(1, where=lambda t: t.kwargs["pacs_name"] == aet)
    assert [task.kwargs for task in tasks] == [expected_registration(aet, good[0], ndicom=2)]
