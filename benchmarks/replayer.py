"""The replay sender's process: prebuilt PDU streams, one association each, sent by sendfile.

    python -m benchmarks.replayer HOST PORT STREAM:INSTANCES [STREAM:INSTANCES ...]

Each ``STREAM`` (built by :mod:`benchmarks.replay`) goes to its own connection, all at once,
from one thread each, while another thread per connection reads the receiver's answers.
Once every connection is closed the answers are checked: an A-ASSOCIATE-AC first,
``INSTANCES`` C-STORE-RSPs with status 0x0000, an A-RELEASE-RP last. Exit 0 only if all of
that holds for every stream.

Standard library only, one process for all connections, and only PDU headers looked at
before the last byte came back: the sender should cost the push as little CPU as the kernel
lets it, so that the receiver has the cores.
"""

from __future__ import annotations

import socket
import struct
import sys
import threading

_PDU_HEADER = struct.Struct(">BxI")
_PDV_HEADER = struct.Struct(">IBB")
_ELEMENT = struct.Struct("<HHI")
_A_ASSOCIATE_AC = 0x02
_P_DATA_TF = 0x04
_A_RELEASE_RP = 0x06
_STATUS = (0x0000, 0x0900)
_LAST_COMMAND_FRAGMENT = 0x03


class AnswerError(Exception):
    """The receiver's answers are not those of a successful push."""


def command_statuses(answers: bytes | OSError) -> list[int]:
    """Check the PDU sequence of ``answers`` and return the Status of each command set."""
    if isinstance(answers, OSError):
        raise answers
    statuses: list[int] = []
    command = bytearray()
    position = 0
    pdu_types: list[int] = []
    while position < len(answers):
        if position + 6 > len(answers):
            raise AnswerError(f"truncated PDU header at byte {position}")
        pdu_type, length = _PDU_HEADER.unpack_from(answers, position)
        body = position + 6
        end = body + length
        if end > len(answers):
            raise AnswerError(f"truncated PDU (type 0x{pdu_type:02X}) at byte {position}")
        pdu_types.append(pdu_type)
        if pdu_type == _P_DATA_TF:
            item = body
            while item < end:
                item_length, _, control = _PDV_HEADER.unpack_from(answers, item)
                command += answers[item + 6 : item + 4 + item_length]
                if control & _LAST_COMMAND_FRAGMENT == _LAST_COMMAND_FRAGMENT:
                    statuses.append(_status_of(bytes(command)))
                    command.clear()
                elif not control & 0x01:
                    raise AnswerError("the receiver sent a data set")
                item += 4 + item_length
        position = end
    if not pdu_types or pdu_types[0] != _A_ASSOCIATE_AC:
        first = f"0x{pdu_types[0]:02X}" if pdu_types else "nothing"
        raise AnswerError(f"expected an A-ASSOCIATE-AC first, got {first}")
    if pdu_types[-1] != _A_RELEASE_RP:
        raise AnswerError(f"expected an A-RELEASE-RP last, got 0x{pdu_types[-1]:02X}")
    return statuses


def _status_of(command: bytes) -> int:
    position = 0
    while position + 8 <= len(command):
        group, element, length = _ELEMENT.unpack_from(command, position)
        position += 8
        if (group, element) == _STATUS and length == 2:
            (status,) = struct.unpack_from("<H", command, position)
            return int(status)
        position += length
    raise AnswerError("a command set without Status (0000,0900)")


def replay(host: str, port: int, stream: str) -> bytes:
    """Send ``stream``; return what the receiver sent up to its A-RELEASE-RP (or its close).

    After the A-RELEASE-RP the requestor closes the connection (PS3.8 AR-3): the acceptor
    waits for that, so the reader walks the PDU headers as they come to notice it.
    """
    answers = bytearray()

    def read() -> None:
        buffer = bytearray(1 << 20)
        next_pdu = 0
        try:
            while count := sock.recv_into(buffer):
                answers.extend(memoryview(buffer)[:count])
                while next_pdu + 6 <= len(answers):
                    pdu_type, length = _PDU_HEADER.unpack_from(answers, next_pdu)
                    next_pdu += 6 + length
                    if pdu_type == _A_RELEASE_RP and next_pdu <= len(answers):
                        return
        except OSError:
            pass  # reset or closed under us: what came before is checked

    with socket.create_connection((host, port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        with open(stream, "rb") as file:
            sock.sendfile(file)
        reader.join()
    return bytes(answers)


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print("usage: " + __doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    host, port = argv[0], int(argv[1])
    jobs = [(path, int(count)) for path, _, count in (a.rpartition(":") for a in argv[2:])]
    answers: list[bytes | OSError] = [b""] * len(jobs)

    def run(index: int) -> None:
        try:
            answers[index] = replay(host, port, jobs[index][0])
        except OSError as error:
            answers[index] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    failures = 0
    for (path, expected), answer in zip(jobs, answers, strict=True):
        try:
            statuses = command_statuses(answer)
        except (OSError, AnswerError) as error:
            print(f"{path}: replay failed: {error}", file=sys.stderr)
            failures += 1
            continue
        bad = [f"0x{s:04X}" for s in statuses if s != 0]
        print(f"{path}: {len(statuses)} responses, {len(bad)} not success, {expected} expected")
        if bad or len(statuses) != expected:
            print(f"{path}: replay failed: statuses {', '.join(bad[:5]) or '-'}", file=sys.stderr)
            failures += 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
