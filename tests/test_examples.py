"""The examples work against real DCMTK peers: storescu into the example SCP, and the
example SCU into storescp."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file

from oxidicom.net import read_part10_header
from oxidicom.testing.scu import BlockingScu
from tests.peers.dcmtk import StorescpFactory, storescu
from tests.peers.ports import (
    LOOPBACK,
    ListenerProcess,
    attach_log,
    free_port,
    retry_on_address_in_use,
    start_listener,
)

pytestmark = pytest.mark.interop

EXAMPLES = Path(__file__).parent.parent / "examples"


def _ct_file() -> Path:
    path = get_testdata_file("CT_small.dcm")
    assert isinstance(path, str)
    return Path(path)


@pytest.fixture
def flat_scp(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[int, Path, ListenerProcess]]:
    folder = tmp_path / "received"

    def start() -> tuple[int, ListenerProcess]:
        port = free_port()
        argv = [sys.executable, str(EXAMPLES / "flat_storage_scp.py"), str(folder), str(port)]
        listener = start_listener(
            "flat_storage_scp",
            [*argv, LOOPBACK],
            ports=[port],
            log_path=tmp_path / f"flat-scp-{port}.log",
        )
        return port, listener

    port, listener = retry_on_address_in_use(start)
    attach_log(request, listener.describe_log)
    yield port, folder, listener
    listener.stop()


def test_storescu_into_the_flat_storage_scp(flat_scp: tuple[int, Path, ListenerProcess]) -> None:
    port, folder, listener = flat_scp
    source = pydicom.dcmread(_ct_file())

    storescu(LOOPBACK, port, [_ct_file()]).check()

    # The file is complete before the C-STORE-RSP goes out, so it is there now.
    (stored,) = folder.iterdir()
    assert stored.name == f"{source.SOPInstanceUID}.dcm"
    received = pydicom.dcmread(stored)
    assert received.SOPInstanceUID == source.SOPInstanceUID
    assert received.PatientName == source.PatientName
    assert received.file_meta.SourceApplicationEntityTitle == "STORESCU"
    assert received.pixel_array.shape == source.pixel_array.shape
    listener.check_running()


def test_an_aborted_resend_keeps_the_stored_copy(
    flat_scp: tuple[int, Path, ListenerProcess],
) -> None:
    port, folder, listener = flat_scp
    storescu(LOOPBACK, port, [_ct_file()]).check()
    (stored,) = folder.iterdir()
    complete = stored.read_bytes()
    header = read_part10_header(_ct_file())
    data_set = _ct_file().read_bytes()[header.data_set_offset :]

    contexts = [(header.sop_class_uid, [header.transfer_syntax_uid])]
    with BlockingScu(LOOPBACK, port, contexts=contexts, calling_ae_title="HALF-WAY") as scu:
        scu.send_store(
            header.sop_class_uid, header.sop_instance_uid, data_set, size=len(data_set) // 2
        )
        scu.abort()
    deadline = time.monotonic() + 20
    while "HALF-WAY: aborted" not in listener.log():  # printed after the sink's abort()
        assert time.monotonic() < deadline, "the SCP never reported the aborted association"
        time.sleep(0.05)

    assert list(folder.iterdir()) == [stored]  # no partial file left, under any name
    assert stored.read_bytes() == complete


def test_echo_and_store_into_storescp(storescp_factory: StorescpFactory) -> None:
    scp = storescp_factory(bit_preserving=True)
    done = subprocess.run(
        [
            sys.executable,
            str(EXAMPLES / "echo_and_store.py"),
            scp.host,
            str(scp.port),
            str(_ct_file()),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert "C-ECHO: 0x0000" in done.stdout
    (stored,) = scp.wait_for(1)
    assert stored.calling_aet == "ECHO-AND-STORE"
    # storescp +B writes the data set as it came: the example sent the file as it is.
    data_set = _ct_file().read_bytes()[-1000:]
    assert stored.path.read_bytes().endswith(data_set)
