"""The receiver as its users run it: ``python -m oxidicom`` with settings from the environment.

These tests drive the real process with real peers: what a PACS is told when an instance
cannot be stored, what happens to an association in flight on SIGTERM, and what a
deployment sees when a setting is wrong. The rest of the end-to-end suite (interop,
character sets, CUBE notifications, telemetry, CLI) is in ``tests/e2e``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid
from pynetdicom import AE

from oxidicom.cube import lonk
from oxidicom.receiver import EXIT_CONFIG, main
from tests.e2e.cube_contract import expected_file_path, expected_registration, lonk_subject
from tests.e2e.dicom_files import make_instance, pydicom_file
from tests.e2e.waiting import until
from tests.peers.celery_worker import CeleryWorker
from tests.peers.dcmtk import echoscu
from tests.peers.nats_lonk_subscriber import LonkRecorder
from tests.peers.oxidicom_receiver import AMQP_URL, NATS_ADDRESS, ReceiverFactory
from tests.peers.ports import free_port
from tests.peers.pynetdicom_peer import run_scu


def _failure(status: int | None) -> bool:
    return status is not None and 0xC000 <= status <= 0xCFFF


@pytest.mark.filterwarnings("ignore:Invalid value for VR DA")
def test_store_response_tells_the_truth(
    receiver_factory: ReceiverFactory, celery_worker: CeleryWorker
) -> None:
    """An instance the contract refuses gets a failure status and leaves no file; the
    association goes on, and the next instance is stored."""
    rx = receiver_factory(queue=celery_worker.queue)
    study = {"PatientID": "RSP1", "StudyInstanceUID": generate_uid()}
    refused: dict[str, Dataset | Path] = {
        "no StudyDate": make_instance(study),
        "StudyDate not a date": make_instance({**study, "StudyDate": "2013XX01"}),
        "StudyDate not a day": make_instance({**study, "StudyDate": "20130230"}),
        # pydicom's deflated file, as stored: its StudyDate is empty.
        "empty StudyDate, deflated": pydicom_file("image_dfl.dcm"),
    }
    stored = [
        make_instance({**study, "StudyDate": "20130308"}),
        # The dashed form is accepted (with a warning) and kept as is in the path.
        make_instance({**study, "StudyDate": "2013-03-08"}),
    ]

    result = run_scu(rx.host, rx.port, items=[*refused.values(), *stored], calling_aet="RSP")

    assert result.ending == "released"
    statuses = dict(zip([*refused, "stored", "dashed"], result.statuses, strict=True))
    assert all(_failure(statuses[reason]) for reason in refused), statuses
    assert (statuses["stored"], statuses["dashed"]) == (0x0000, 0x0000)
    assert rx.files() == sorted(expected_file_path("RSP", ds) for ds in stored)
    assert "-2013-03-08/" in expected_file_path("RSP", stored[1])


async def test_sigterm_lets_the_association_in_flight_finish(
    receiver_factory: ReceiverFactory, celery_worker: CeleryWorker
) -> None:
    rx = receiver_factory(queue=celery_worker.queue, OXIDICOM_SHUTDOWN_GRACE="2m")
    aet = "INFLIGHT"
    tags = {
        "PatientID": "TERM1",
        "StudyDate": "20240401",
        "StudyInstanceUID": generate_uid(),
        "SeriesInstanceUID": generate_uid(),
    }
    instances = [make_instance({**tags, "InstanceNumber": str(n)}) for n in range(1, 6)]
    subject = lonk_subject(rx.root_subject, aet, str(tags["SeriesInstanceUID"]))
    recorder = await LonkRecorder.subscribe(NATS_ADDRESS, subject)
    ae = AE(ae_title=aet)
    ae.add_requested_context(MRImageStorage, ExplicitVRLittleEndian)
    association = await asyncio.to_thread(ae.associate, rx.host, rx.port, ae_title="ChRIS")
    try:
        assert association.is_established
        first = await asyncio.to_thread(association.send_c_store, instances[0])
        assert first.Status == 0x0000

        rx.process.process.send_signal(signal.SIGTERM)
        await until(lambda: "shutting down" in rx.log(), "the receiver to start shutting down")
        # No new association while shutting down...
        refused = await asyncio.to_thread(echoscu, rx.host, rx.port, calling_aet="LATE")
        assert not refused.ok
        # ...but the one in flight goes on to the end.
        for instance in instances[1:]:
            response = await asyncio.to_thread(association.send_c_store, instance)
            assert response.Status == 0x0000
        await asyncio.to_thread(association.release)
        assert association.is_released

        code = await asyncio.to_thread(rx.process.process.wait, 60)
        assert code == 0, rx.log()
        assert len(rx.files()) == len(instances)
        [task] = await celery_worker.wait_for_tasks(1, where=lambda t: t.kwargs["pacs_name"] == aet)
        assert task.kwargs == expected_registration(aet, instances[0], ndicom=len(instances))
        await recorder.wait_until(lambda r: r.done(subject))
        assert recorder.messages[subject][-2:] == [lonk.Progress(len(instances)), lonk.Done()]
    finally:
        if association.is_established:
            association.abort()
        await recorder.aclose()


def _settings(tmp_path: Path, variable: str, value: str | None) -> dict[str, str]:
    """Valid settings but for ``variable``, set to ``value`` (None: left out)."""
    settings = {
        "OXIDICOM_AMQP_ADDRESS": AMQP_URL,
        "OXIDICOM_FILES_ROOT": str(tmp_path),
        "OXIDICOM_LISTENER_ADDRESS": "127.0.0.1",
        "OXIDICOM_LISTENER_PORT": str(free_port()),
    }
    if value is None:
        del settings[variable]
    else:
        settings[variable] = value
    return settings


def _assert_one_clear_line(stderr: str, variable: str) -> None:
    assert "Traceback" not in stderr
    [line] = stderr.splitlines()
    assert line.startswith("oxidicom: "), line
    assert variable in line, line


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("OXIDICOM_SCP_MAX_PDU_LENGTH", "abc"),
        ("OXIDICOM_FILES_ROOT", None),
        ("OXIDICOM_FILES_ROOT", "/nonexistent/oxidicom/files"),
        ("OXIDICOM_OUTBOX_DIR", "/proc/nope"),
    ],
)
def test_bad_setting_stops_the_command_with_one_clear_line(
    tmp_path: Path, variable: str, value: str | None
) -> None:
    """``python -m oxidicom`` as a deployment runs it: exit code 2, one line, no trace."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OXIDICOM_")}

    done = subprocess.run(
        [sys.executable, "-m", "oxidicom"],
        env={**env, **_settings(tmp_path, variable, value)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert (done.returncode, done.stdout) == (EXIT_CONFIG, "")
    _assert_one_clear_line(done.stderr, variable)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("OXIDICOM_AMQP_ADDRESS", None),
        ("OXIDICOM_AMQP_ADDRESS", "http://localhost:5672"),
        ("OXIDICOM_SCP_STRICT", "maybe"),
        ("OXIDICOM_PROGRESS_INTERVAL", "soon"),
        ("OXIDICOM_LISTENER_PORT", "70000"),
        ("OXIDICOM_SCP_AET", "WAY-TOO-LONG-AE-TITLE"),
        ("OXIDICOM_OUTBOX_DIR", "/proc/nope"),
        ("OXIDICOM_OUTBOX_DIR", "/dev/null"),
    ],
)
def test_bad_setting_is_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], variable: str, value: str | None
) -> None:
    """The same through the command's entry point, without starting an interpreter."""
    assert main(_settings(tmp_path, variable, value)) == EXIT_CONFIG

    captured = capsys.readouterr()
    assert captured.out == ""
    _assert_one_clear_line(captured.err, variable)


def test_stored_files_are_read_back_by_pydicom(
    receiver_factory: ReceiverFactory, celery_worker: CeleryWorker
) -> None:
    """The plainest round trip: what dcmread gets back is what was sent."""
    rx = receiver_factory(queue=celery_worker.queue)
    sent = make_instance({"PatientID": "RT1", "StudyDate": "20240501"})

    result = run_scu(rx.host, rx.port, items=[sent], calling_aet="ROUNDTRIP")

    assert result.statuses == (0x0000,)
    stored = dcmread(rx.files_root / expected_file_path("ROUNDTRIP", sent))
    assert stored == sent


@pytest.mark.parametrize(
    ("limits", "expected_soft", "warns"),
    [
        ((1024, 4096), 1280, False),  # raised to what 1024 connections need
        ((1024, 1100), 1100, True),  # as far as the hard limit allows, with a warning
        ((8192, 8192), 8192, False),  # enough already: left alone
    ],
)
def test_the_open_file_limit_is_raised_for_the_connections(
    limits: tuple[int, int], expected_soft: int, warns: bool
) -> None:
    # In a child process: the test's own limits stay as they are.
    script = (
        "import resource\n"
        "from oxidicom.receiver import raise_descriptor_limit\n"
        f"resource.setrlimit(resource.RLIMIT_NOFILE, {limits})\n"
        "warning = raise_descriptor_limit(1024)\n"
        "print(resource.getrlimit(resource.RLIMIT_NOFILE)[0], warning is not None)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.split() == [str(expected_soft), str(warns)]
