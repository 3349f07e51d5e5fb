"""Record what real requestors send into ``fuzz/corpus/`` (run once; the files are committed).

    python -m fuzz.capture [--out fuzz/corpus]

A recorder listens on loopback and answers each connection with the harness's own acceptor
(:class:`fuzz.target.Acceptor`), keeping every byte it received; then DCMTK's ``echoscu`` and
``storescu`` (with ``TCP_NODELAY=1``), pynetdicom, and our own sans-IO requestor each run one
conversation against it. Each connection's bytes become one ``<name>.bin``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from pydicom import dcmread
from pydicom.data import get_testdata_file
from pynetdicom import AE
from pynetdicom.pdu_primitives import (
    AsynchronousOperationsWindowNegotiation,
    SCP_SCU_RoleSelectionNegotiation,
    SOPClassExtendedNegotiation,
    UserIdentityNegotiation,
)

from fuzz.inputs import CORPUS_DIR, IMPLICIT_VR_LE, MR_IMAGE_STORAGE, VERIFICATION
from fuzz.target import Acceptor
from oxidicom.testing.scu import BlockingScu

LOOPBACK = "127.0.0.1"


class _Recording(asyncio.Protocol):
    def __init__(self, done: Callable[[bytes], None]) -> None:
        self._done = done
        self._acceptor = Acceptor()
        self._received = bytearray()
        self._written = 0
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._flush()

    def data_received(self, data: bytes) -> None:
        self._received += data
        self._acceptor.feed(data)
        self._flush()

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._acceptor.close()
        self._done(bytes(self._received))

    def _flush(self) -> None:
        assert self._transport is not None
        output = self._acceptor.output
        if len(output) > self._written:
            self._transport.write(bytes(output[self._written :]))
            self._written = len(output)
        if self._acceptor.transport_closed:
            self._transport.close()


class Recorder:
    """The recording server, on its own event loop thread."""

    def __init__(self) -> None:
        self.streams: list[bytes] = []
        self._arrived = threading.Condition()
        self._loop = asyncio.new_event_loop()
        self._server = self._loop.run_until_complete(
            self._loop.create_server(lambda: _Recording(self._record), LOOPBACK, 0)
        )
        self.port: int = self._server.sockets[0].getsockname()[1]
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()

    def _record(self, stream: bytes) -> None:
        with self._arrived:
            self.streams.append(stream)
            self._arrived.notify_all()

    def next_stream(self, timeout: float = 30.0) -> bytes:
        """The bytes of the next connection to end."""
        with self._arrived:
            if not self._arrived.wait_for(lambda: self.streams, timeout):
                raise TimeoutError("no connection ended")
            return self.streams.pop(0)

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._server.close)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()


def _dcmtk(*argv: str) -> None:
    env = {**os.environ, "TCP_NODELAY": "1"}
    subprocess.run(argv, env=env, check=True, capture_output=True, timeout=60)


def _pynetdicom_store(port: int, path: str) -> None:
    dataset = dcmread(path)
    ae = AE(ae_title="PYNETDICOM")
    ae.add_requested_context(dataset.SOPClassUID, dataset.file_meta.TransferSyntaxUID)
    role = SCP_SCU_RoleSelectionNegotiation()
    role.sop_class_uid = dataset.SOPClassUID
    role.scu_role = True
    role.scp_role = False
    window = AsynchronousOperationsWindowNegotiation()
    window.maximum_number_operations_invoked = 2
    window.maximum_number_operations_performed = 1
    identity = UserIdentityNegotiation()
    identity.user_identity_type = 2
    identity.primary_field = b"fuzz"
    identity.secondary_field = b"not-a-secret"
    identity.positive_response_requested = True
    extended = SOPClassExtendedNegotiation()
    extended.sop_class_uid = dataset.SOPClassUID
    extended.service_class_application_information = b"\x02\x00"
    association = ae.associate(
        LOOPBACK, port, ae_title="FUZZ-SCP", ext_neg=[role, window, identity, extended]
    )
    if not association.is_established:
        raise RuntimeError("pynetdicom could not associate")
    association.send_c_store(dataset)
    association.release()


def _pynetdicom_echo(port: int, *, abort: bool) -> None:
    ae = AE(ae_title="PYNETDICOM")
    ae.add_requested_context(VERIFICATION)
    association = ae.associate(LOOPBACK, port, ae_title="FUZZ-SCP")
    if not association.is_established:
        raise RuntimeError("pynetdicom could not associate")
    association.send_c_echo()
    if abort:
        association.abort()
    else:
        association.release()


def _oxidicom_echo_store(port: int, path: str) -> None:
    dataset = dcmread(path)
    raw = Path(path).read_bytes()
    # Preamble and "DICM" (132 bytes), then (0002,0000) UL group length (12 bytes), then
    # the rest of the file meta group: the data set follows, in its transfer syntax.
    meta_length = int.from_bytes(raw[140:144], "little")
    data_set = raw[144 + meta_length :]
    client = BlockingScu(
        LOOPBACK,
        port,
        contexts=[(VERIFICATION, [IMPLICIT_VR_LE]), (MR_IMAGE_STORAGE, ["1.2.840.10008.1.2.1"])],
        calling_ae_title="OXIDICOM-FUZZ",
        called_ae_title="FUZZ-SCP",
        max_length=4096,
    )
    client.echo()
    client.store(dataset.SOPClassUID, dataset.SOPInstanceUID, data_set)
    client.release()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=CORPUS_DIR)
    args = parser.parse_args(argv)
    ct = str(get_testdata_file("CT_small.dcm"))
    mr = str(get_testdata_file("MR_small.dcm"))
    recorder = Recorder()
    port = str(recorder.port)
    sessions: list[tuple[str, Callable[[], None]]] = [
        ("dcmtk-echoscu", lambda: _dcmtk("echoscu", "-aec", "FUZZ-SCP", LOOPBACK, port)),
        (
            "dcmtk-storescu-ct",
            lambda: _dcmtk("storescu", "-aec", "FUZZ-SCP", LOOPBACK, port, ct),
        ),
        ("pynetdicom-echo-release", lambda: _pynetdicom_echo(recorder.port, abort=False)),
        ("pynetdicom-echo-abort", lambda: _pynetdicom_echo(recorder.port, abort=True)),
        ("pynetdicom-store-mr-extended", lambda: _pynetdicom_store(recorder.port, mr)),
        ("oxidicom-echo-store-mr", lambda: _oxidicom_echo_store(recorder.port, mr)),
    ]
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        for name, run in sessions:
            run()
            stream = recorder.next_stream()
            (args.out / f"{name}.bin").write_bytes(stream)
            print(f"{name}.bin: {len(stream)} bytes")
    finally:
        recorder.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
