"""Several receiver processes sharing one port (``OXIDICOM_WORKERS``), for multi-core hosts.

The parent binds the listening socket and forks the workers, which inherit it. Each worker
is a full pipeline (its own event loop, storage, NATS and AMQP connections and outbox
owner) taking connections from that one socket, the least busy worker first: they publish
their loads on a board in shared memory (see :mod:`oxidicom.net.shared_listener`;
SO_REUSEPORT's hash would put two concurrent pushes on one worker half of the time). The
parent only supervises: it forwards SIGTERM/SIGINT, restarts a worker that died unexpectedly
(at most once per second; the socket stays open meanwhile, and the others take what
arrives), and exits when all have stopped.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import time
from collections.abc import Callable, Coroutine
from typing import Any

from oxidicom.net.shared_listener import LoadBoard, SharedPort
from oxidicom.settings import Settings

log = logging.getLogger("oxidicom.workers")

Runner = Callable[[Coroutine[Any, Any, None]], None]

_BACKLOG = 1024


def _run_worker(settings: Settings, run: Runner, port: SharedPort) -> int:
    from oxidicom.receiver import serve  # noqa: PLC0415 - receiver imports this module

    try:
        run(serve(settings, shared_port=port))
    except OSError as error:
        log.error("worker %d cannot serve: %s", os.getpid(), error)  # noqa: TRY400
        return 1
    except BaseException:
        log.exception("worker %d crashed", os.getpid())
        return 1
    return 0


def listen(settings: Settings) -> socket.socket:
    """The socket all workers accept from, bound to ``OXIDICOM_LISTENER_ADDRESS``/``PORT``."""
    listener = settings.listener
    family = socket.AF_INET6 if ":" in listener.address else socket.AF_INET
    return socket.create_server((listener.address, listener.port), family=family, backlog=_BACKLOG)


def _spawn(settings: Settings, run: Runner, port: SharedPort) -> int:
    pid = os.fork()
    if pid == 0:  # the worker
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        code = _run_worker(settings, run, port)
        logging.shutdown()
        os._exit(code)
    return pid


def run_workers(settings: Settings, run: Runner) -> int:
    """Start ``OXIDICOM_WORKERS`` receivers, each running :func:`serve` with ``run``
    (``asyncio.run`` or ``uvloop.run``); return the exit code once all have stopped."""
    try:
        sock = listen(settings)
    except OSError as error:  # e.g. the port is taken
        log.error("cannot serve: %s", error)  # noqa: TRY400 - one line, not a traceback
        return 1
    with sock:
        return _supervise(settings, run, sock)


def _supervise(settings: Settings, run: Runner, sock: socket.socket) -> int:
    count = settings.listener.workers
    board = LoadBoard(count)
    stopping = False

    def stop(signum: int, _: object) -> None:
        nonlocal stopping
        stopping = True
        # Once the workers have closed their descriptors too, new connections are refused
        # instead of queueing for nobody.
        sock.close()
        for pid in list(workers):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    workers: dict[int, tuple[int, float]] = {}
    """Each worker's place on the board, and when it started, by process ID."""
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for index in range(count):
        workers[_spawn(settings, run, SharedPort(sock, board, index))] = (index, time.monotonic())
    log.info("started %d worker processes: %s", count, sorted(workers))
    exit_code = 0
    while workers:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        place = workers.pop(pid, None)
        code = os.waitstatus_to_exitcode(status)
        if place is None:
            continue
        index, started = place
        board.vacate(index)  # no connection waits for it meanwhile
        if stopping:
            exit_code = exit_code or (code if code > 0 else 0)
            continue
        log.error("worker %d exited with %d; restarting it", pid, code)
        if time.monotonic() - started < 1.0:
            time.sleep(1.0)
        port = SharedPort(sock, board, index)
        workers[_spawn(settings, run, port)] = (index, time.monotonic())
    return exit_code
