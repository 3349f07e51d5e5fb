"""Slow and silent peers: the ARTIM and idle timers close connections that say nothing (or
half a PDU header), and a peer that never reads our answers neither makes us buffer them
without limit nor holds up anyone else.

The receiver runs with ``OXIDICOM_ARTIM_TIMEOUT=1s`` and ``OXIDICOM_IDLE_TIMEOUT=2s``; the
tests wait for each connection to close within a generous bound, and measure nothing.
"""

from __future__ import annotations

import select
import socket
import threading
from collections.abc import Iterator

import pytest

from oxidicom.net import AssociationAbortedError
from oxidicom.ul.constants import PduType
from tests.peers.oxidicom_receiver import Receiver, start_receiver
from tests.reliability.support import (
    Scu,
    open_fds,
    rss_kib,
    settled_fds,
    wait_for,
)

pytestmark = [pytest.mark.interop]

CLOSE_BOUND = 30.0
"""Generous: the timers are 1 and 2 s, the machine may be busy."""


@pytest.fixture(scope="module")
def receiver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Receiver]:
    receiver = start_receiver(
        tmp_path_factory.mktemp("slow-peers"),
        OXIDICOM_ARTIM_TIMEOUT="1s",
        OXIDICOM_IDLE_TIMEOUT="2s",
    )
    yield receiver
    assert receiver.stop() == 0, receiver.log()


def _raw(receiver: Receiver, first_bytes: bytes = b"") -> socket.socket:
    sock = socket.create_connection((receiver.host, receiver.port), timeout=CLOSE_BOUND)
    if first_bytes:
        sock.sendall(first_bytes)
    return sock


def _read_until_closed(sock: socket.socket) -> bytes:
    """Everything the receiver sends before it closes; fails if it does not close in time."""
    received = bytearray()
    sock.settimeout(CLOSE_BOUND)
    try:
        while data := sock.recv(65536):
            received += data
    except TimeoutError:
        pytest.fail(f"the receiver did not close the connection within {CLOSE_BOUND:g} s")
    except ConnectionResetError:
        pass
    finally:
        sock.close()
    return bytes(received)


def _echo_works(receiver: Receiver) -> None:
    scu = Scu(receiver.host, receiver.port)
    assert scu.echo() == 0
    scu.release()


def test_silent_connections_and_half_headers_are_closed_by_artim(receiver: Receiver) -> None:
    pid = receiver.process.pid
    _echo_works(receiver)
    baseline = settled_fds(pid)
    silent = [_raw(receiver) for _ in range(4)]
    half_headers = [_raw(receiver, b"\x01\x00\x00") for _ in range(4)]  # A-ASSOCIATE-RQ...
    _echo_works(receiver)  # others are served meanwhile
    for sock in silent + half_headers:
        # ARTIM expiry before an association closes the connection without a PDU (AA-2).
        assert _read_until_closed(sock) == b""
    wait_for(lambda: open_fds(pid), lambda n: n <= baseline, timeout=CLOSE_BOUND, what="fds")


def test_silent_associations_and_half_headers_are_aborted_by_the_idle_timer(
    receiver: Receiver,
) -> None:
    pid = receiver.process.pid
    _echo_works(receiver)
    baseline = settled_fds(pid)
    silent = [Scu(receiver.host, receiver.port) for _ in range(3)]
    half_headers = [Scu(receiver.host, receiver.port) for _ in range(3)]
    for scu in half_headers:
        scu.sock.sendall(b"\x04\x00\x00")  # P-DATA-TF...
    _echo_works(receiver)
    for scu in silent + half_headers:
        answer = _read_until_closed(scu.sock)
        # An A-ABORT (then ARTIM, then close): the association ended on our side.
        assert answer[:1] == bytes([PduType.A_ABORT]), answer
    wait_for(lambda: open_fds(pid), lambda n: n <= baseline, timeout=CLOSE_BOUND, what="fds")


def _flood_until_blocked(scu: Scu, *, cap: int, stall: float) -> tuple[int, str]:
    """Send C-ECHO-RQs without ever reading, until the receiver stops taking them for
    ``stall`` seconds, resets us, or ``cap`` bytes went out. (bytes sent, why it stopped)"""
    batch = memoryview(scu.encoded_echoes(2000))
    sock = scu.sock
    sock.setblocking(False)
    sent, position = 0, 0
    while sent < cap:
        try:
            count = sock.send(batch[position:])
        except BlockingIOError:
            _, writable, _ = select.select([], [sock], [], stall)
            if not writable:
                return sent, "blocked"
            continue
        except (BrokenPipeError, ConnectionResetError):
            return sent, "reset"
        sent += count
        position = (position + count) % len(batch)
    return sent, "cap"


def test_a_peer_that_never_reads_is_held_back_and_does_not_block_others(
    receiver: Receiver,
) -> None:
    pid = receiver.process.pid
    _echo_works(receiver)
    baseline_fds = settled_fds(pid)
    baseline_rss = rss_kib(pid)

    stop = threading.Event()
    neighbour: list[int | BaseException] = []

    def echo_meanwhile() -> None:
        while not stop.is_set():
            try:
                scu = Scu(receiver.host, receiver.port)
                neighbour.append(scu.echo())
                scu.release()
            except (AssociationAbortedError, OSError) as error:
                neighbour.append(error)

    thread = threading.Thread(target=echo_meanwhile)
    thread.start()
    hog = Scu(receiver.host, receiver.port, receive_buffer=4096)
    try:
        cap = 128 * 1024 * 1024
        sent, why = _flood_until_blocked(hog, cap=cap, stall=3.0)
        grown_kib = rss_kib(pid) - baseline_rss
        stop.set()
        thread.join()
        # Back-pressure: once our answers pile up unread, the receiver stops reading; what
        # it holds for this peer is bounded (socket buffers, not its own memory).
        assert why in ("blocked", "reset"), f"the receiver took {sent} bytes of requests"
        assert grown_kib < 32 * 1024, f"RSS grew by {grown_kib} KiB for {sent} bytes sent"
        assert neighbour, "the neighbour never got to echo"
        assert all(result == 0 for result in neighbour), neighbour
        # Still never reading, never closing: idle timer, A-ABORT, ARTIM, and the socket
        # goes, its unsent answers with it.
        wait_for(
            lambda: open_fds(pid),
            lambda n: n <= baseline_fds,
            timeout=CLOSE_BOUND,
            what="fds while a peer that never reads stays connected",
        )
    finally:
        stop.set()
        thread.join()
        hog.reset()
    _echo_works(receiver)
