"""Fuzz inputs over real sockets, against a running server.

:func:`send_input` plays one input on a fresh connection (pauses are skipped: a live server
runs on its own clock), half-closes, and reads the answer until the server closes. The
server passes when everything it sent is a sequence of well-framed PDUs and it closed the
connection within the timeout. Between inputs, the harness checks the server's health with
a C-ECHO from :class:`oxidicom.testing.scu.BlockingScu`.
"""

from __future__ import annotations

import ipaddress
import socket
import time

import attrs

from fuzz.inputs import FuzzInput
from fuzz.target import BrokenPropertyError
from oxidicom.ul.constants import PDU_HEADER_LENGTH, PduType


class RefusedHostError(ValueError):
    """Live fuzzing aims at loopback only, unless the operator says they own the host."""


def check_target(host: str, *, i_own_this_host: bool) -> None:
    """Refuse anything but a loopback address without ``i_own_this_host``."""
    if i_own_this_host:
        return
    try:
        addresses = {str(info[4][0]) for info in socket.getaddrinfo(host, None)}
    except socket.gaierror as error:
        raise RefusedHostError(f"cannot resolve {host!r}: {error}") from None
    if not all(ipaddress.ip_address(address.split("%")[0]).is_loopback for address in addresses):
        raise RefusedHostError(
            f"{host} is not a loopback address: live fuzzing sends malformed traffic; "
            "pass --i-own-this-host to aim it at a host you are responsible for"
        )


@attrs.frozen
class LiveAnswer:
    pdu_types: tuple[int, ...]
    """Types of the PDUs the server sent, in order."""
    seconds: float


def check_answer(data: bytes) -> tuple[int, ...]:
    """PDU types of a server's answer; raises :class:`BrokenPropertyError` if it is not a sequence
    of whole PDUs of defined types."""
    types: list[int] = []
    pos = 0
    while pos < len(data):
        if len(data) - pos < PDU_HEADER_LENGTH:
            raise BrokenPropertyError(f"server sent a truncated PDU header at byte {pos}")
        pdu_type = data[pos]
        length = int.from_bytes(data[pos + 2 : pos + 6], "big")
        if pdu_type not in PduType.__members__.values():
            raise BrokenPropertyError(f"server sent PDU type 0x{pdu_type:02X} at byte {pos}")
        if len(data) - pos - PDU_HEADER_LENGTH < length:
            raise BrokenPropertyError(f"server sent a truncated PDU at byte {pos}")
        types.append(pdu_type)
        pos += PDU_HEADER_LENGTH + length
    return tuple(types)


def send_input(host: str, port: int, fuzz_input: FuzzInput, timeout: float) -> LiveAnswer:
    """Play ``fuzz_input`` on a new connection; the server must answer and close in time."""
    started = time.monotonic()
    received = bytearray()
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            for step in fuzz_input.steps:
                if isinstance(step, bytes):
                    sock.sendall(step)
            sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError, OSError):
            pass  # the server closed first (after an A-ABORT, say): its answer is below
        deadline = started + timeout
        while True:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = sock.recv(65536)
            except TimeoutError:
                raise BrokenPropertyError(f"server did not close within {timeout:g} s") from None
            except ConnectionResetError:
                break
            if not data:
                break
            received += data
    return LiveAnswer(check_answer(bytes(received)), time.monotonic() - started)
