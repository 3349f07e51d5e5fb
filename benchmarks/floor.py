"""The least CPU any receiver can spend per GB on this machine and target.

Receiving bytes from a loopback TCP socket and writing them to a file costs kernel time
(two copies, page-cache allocation, socket and file system bookkeeping) that no receiver
can avoid. Measured with the simplest possible receiver -- ``recv_into`` one PDU's worth,
``write`` it -- it is the yardstick for the CPU-s/GB column: DCMTK ``+B`` should sit a
little above it, and so should a streaming oxidicom.
"""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path

import attrs

GB = 1e9
_SENDER = """
import socket, sys
sock = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
block = bytes(1 << 20)
for _ in range(int(sys.argv[2])):
    sock.sendall(block)
sock.close()
"""


@attrs.frozen
class Floor:
    nbytes: int
    chunk: int
    seconds: float
    cpu_seconds: float

    @property
    def cpu_seconds_per_gb(self) -> float:
        return self.cpu_seconds / (self.nbytes / GB)


def measure_floor(folder: Path, mebibytes: int = 256, chunk: int = 16384) -> Floor:
    """Receive ``mebibytes`` of zeros from a child process into a file in ``folder``.

    Only this thread's CPU is counted (RUSAGE_THREAD), so the sender's is not.
    """
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        sender = subprocess.Popen([sys.executable, "-c", _SENDER, str(port), str(mebibytes)])
        connection, _ = listener.accept()
    buffer = bytearray(chunk)
    view = memoryview(buffer)
    total = 0
    before = resource.getrusage(resource.RUSAGE_THREAD)
    started = time.perf_counter()
    fd = os.open(folder / "kernel-floor.bin", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        with connection:
            while received := connection.recv_into(buffer):
                os.write(fd, view[:received])
                total += received
    finally:
        os.close(fd)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_THREAD)
    sender.wait()
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Floor(nbytes=total, chunk=chunk, seconds=seconds, cpu_seconds=cpu)
