"""``oxidicom echo`` and ``oxidicom send``, run as commands against DCMTK and our receiver.

What a user sees: the exit code, the one-line summary on stdout, one line per failed file
and one clear line (never a traceback) for an SCP that cannot be reached or refuses.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import attrs
import pytest
from pydicom import dcmread

from tests.e2e.checks import assert_part10, files_from
from tests.e2e.cube_contract import expected_file_path
from tests.e2e.dicom_files import data_set_bytes, make_instance, pydicom_file
from tests.peers.dcmtk import StorescpFactory
from tests.peers.oxidicom_receiver import Receiver
from tests.peers.ports import free_port

SUMMARY = re.compile(
    r"sent (?P<sent>\d+) instance\(s\), [0-9.]+ MB in [0-9.]+ s \([0-9.]+ MB/s\); "
    r"(?P<failed>\d+) failed, (?P<skipped>\d+) skipped \(not DICOM\)"
)
FILES = ("CT_small.dcm", "MR_small_RLE.dcm", "JPEG2000.dcm")
"""Three SOP classes and syntaxes (Explicit VR LE, RLE, JPEG 2000): three contexts."""


@attrs.frozen
class Run:
    returncode: int
    stdout: str
    stderr: str

    def summary(self) -> dict[str, int]:
        match = SUMMARY.fullmatch(self.stdout.strip())
        assert match is not None, self
        return {key: int(value) for key, value in match.groupdict().items()}

    def one_line_error(self) -> str:
        """The error the command printed: exactly one ``oxidicom: ...`` line."""
        assert "Traceback" not in self.stderr, self.stderr
        [line] = self.stderr.splitlines()
        assert line.startswith("oxidicom: "), line
        return line


def oxidicom(*args: str | Path | int) -> Run:
    done = subprocess.run(
        [sys.executable, "-m", "oxidicom", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return Run(done.returncode, done.stdout, done.stderr)


def test_echo_to_storescp(storescp_factory: StorescpFactory) -> None:
    scp = storescp_factory()

    run = oxidicom("echo", scp.host, scp.port, "-aet", "ECHOTEST", "-aec", scp.aet)

    assert (run.returncode, run.stderr) == (0, "")
    assert run.stdout == f"C-ECHO to {scp.host}:{scp.port}: success\n"


def test_echo_to_our_receiver(rx: Receiver, aet: str) -> None:
    run = oxidicom("echo", rx.host, rx.port, "-aet", aet)

    assert (run.returncode, run.stderr) == (0, "")
    assert run.stdout == f"C-ECHO to {rx.host}:{rx.port}: success\n"


def test_echo_to_nobody_is_one_clear_line() -> None:
    port = free_port()  # nothing listens there now

    run = oxidicom("echo", "127.0.0.1", port)

    assert run.returncode == 1
    assert str(port) in run.one_line_error()


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (("echo", "127.0.0.1", "99999"), "argument port:"),
        (("echo", "127.0.0.1", "0"), "argument port:"),
        (("send", "127.0.0.1", "dicom", "x.dcm"), "argument port:"),
        (("fuzz", "127.0.0.1", "65536"), "argument port:"),
        (("echo", "127.0.0.1", "104", "-pdu", "4095"), "argument -pdu/--max-pdu:"),
        (
            ("send", "127.0.0.1", "104", "x.dcm", "--max-pdu", str(2**32)),
            "argument -pdu/--max-pdu:",
        ),
    ],
)
def test_bad_argument_is_one_clear_line(args: tuple[str, ...], named: str) -> None:
    """Caught before connecting: usage exit code, the argument named, no traceback."""
    run = oxidicom(*args)

    assert (run.returncode, run.stdout) == (2, "")
    assert named in run.one_line_error()


def test_send_to_storescp(storescp_factory: StorescpFactory) -> None:
    scp = storescp_factory(bit_preserving=True)
    sources = [pydicom_file(name) for name in FILES]

    run = oxidicom("send", scp.host, scp.port, *sources, "-aet", "SENDTEST", "-aec", scp.aet)

    assert (run.returncode, run.stderr) == (0, "")
    assert run.summary() == {"sent": 3, "failed": 0, "skipped": 0}
    received = scp.wait_for(3)
    assert {stored.calling_aet for stored in received} == {"SENDTEST"}
    by_instance = {dcmread(stored.path).SOPInstanceUID: stored.path for stored in received}
    for source in sources:
        uid = dcmread(source, stop_before_pixels=True).SOPInstanceUID
        assert data_set_bytes(by_instance[uid]) == data_set_bytes(source)


def test_send_to_storescp_that_refuses(storescp_factory: StorescpFactory) -> None:
    scp = storescp_factory(extra_args=["--refuse"])

    run = oxidicom("send", scp.host, scp.port, pydicom_file("CT_small.dcm"))

    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    assert run.summary() == {"sent": 0, "failed": 1, "skipped": 0}
    [line] = run.stderr.splitlines()
    assert line.startswith(f"failed: {pydicom_file('CT_small.dcm')}: "), line


def test_send_what_storescp_cannot_accept(storescp_factory: StorescpFactory) -> None:
    """storescp accepting only Implicit VR LE gets a JPEG 2000 file: no context for it."""
    scp = storescp_factory(accept="implicit")
    accepted, refused = pydicom_file("MR_small_implicit.dcm"), pydicom_file("JPEG2000.dcm")

    run = oxidicom("send", scp.host, scp.port, accepted, refused)

    assert run.returncode == 1
    assert run.summary() == {"sent": 1, "failed": 1, "skipped": 0}
    [line] = run.stderr.splitlines()
    assert line.startswith(f"failed: {refused}: "), line
    [stored] = scp.wait_for(1)
    assert dcmread(stored.path).SOPInstanceUID == dcmread(accepted).SOPInstanceUID


def test_send_folder_to_our_receiver(rx: Receiver, aet: str, tmp_path: Path) -> None:
    folder = tmp_path / "upload"
    (folder / "nested").mkdir(parents=True)
    sources = []
    for index, name in enumerate(FILES):
        target = folder / ("nested" if index else "") / name
        target.write_bytes(pydicom_file(name).read_bytes())
        sources.append(target)
    (folder / "README.txt").write_text("not DICOM\n")

    run = oxidicom("send", rx.host, rx.port, folder, "-aet", aet)

    assert (run.returncode, run.stderr) == (0, "")
    assert run.summary() == {"sent": 3, "failed": 0, "skipped": 1}
    sent = {source: dcmread(source) for source in sources}
    assert files_from(rx, aet) == sorted(expected_file_path(aet, ds) for ds in sent.values())
    for source, ds in sent.items():
        stored = rx.files_root / expected_file_path(aet, ds)
        assert data_set_bytes(stored) == data_set_bytes(source)
        assert_part10(
            stored,
            sop_class_uid=ds.SOPClassUID,
            sop_instance_uid=ds.SOPInstanceUID,
            transfer_syntax=ds.file_meta.TransferSyntaxUID,
            calling_aet=aet,
        )


def test_send_reports_what_our_receiver_refuses(rx: Receiver, aet: str, tmp_path: Path) -> None:
    good, bad = tmp_path / "good.dcm", tmp_path / "no-study-date.dcm"
    make_instance({"PatientID": "CLI1", "StudyDate": "20240101"}).save_as(
        good, enforce_file_format=True
    )
    make_instance({"PatientID": "CLI1"}).save_as(bad, enforce_file_format=True)

    run = oxidicom("send", rx.host, rx.port, bad, good, "-aet", aet)

    assert run.returncode == 1
    assert run.summary() == {"sent": 1, "failed": 1, "skipped": 0}
    [line] = run.stderr.splitlines()
    assert re.fullmatch(rf"failed: {re.escape(str(bad))}: 0xC[0-9A-F]{{3}} .*StudyDate.*", line)
    assert files_from(rx, aet) == [expected_file_path(aet, dcmread(good))]


def test_send_a_file_cut_short_is_refused_by_our_receiver(
    rx: Receiver, aet: str, tmp_path: Path
) -> None:
    """pydicom's MR_truncated.dcm ends inside its Pixel Data. ``send`` streams files as they
    are, so the receiver gets a data set shorter than its own lengths say, and refuses it
    rather than store it truncated."""
    whole = tmp_path / "whole.dcm"
    whole.write_bytes(pydicom_file("MR_small.dcm").read_bytes())
    cut = pydicom_file("MR_truncated.dcm")

    run = oxidicom("send", rx.host, rx.port, cut, whole, "-aet", aet)

    assert run.returncode == 1
    assert run.summary() == {"sent": 1, "failed": 1, "skipped": 0}
    [line] = run.stderr.splitlines()
    assert re.fullmatch(rf"failed: {re.escape(str(cut))}: 0xC001 .*", line), line
    assert files_from(rx, aet) == [expected_file_path(aet, dcmread(whole))]
    assert "ended inside the value of (7FE0,0010)" in rx.log()
