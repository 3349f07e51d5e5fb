"""Several receiver processes sharing one port (``OXIDICOM_WORKERS``), for multi-core hosts.

Each worker is a full pipeline (its own event loop, storage, NATS and AMQP connections and
outbox owner) bound to the port with SO_REUSEPORT, so the kernel spreads connections over
them. The parent only supervises: it forwards SIGTERM/SIGINT, restarts a worker that died
unexpectedly (at most once per second), and exits when all have stopped.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable, Coroutine
from typing import Any

from oxidicom.settings import Settings

log = logging.getLogger("oxidicom.workers")

Runner = Callable[[Coroutine[Any, Any, None]], None]


def _run_worker(settings: Settings, run: Runner) -> int:
    from oxidicom.receiver import serve  # noqa: PLC0415 - receiver imports this module

    try:
        run(serve(settings))
    except OSError as error:
        log.error("worker %d cannot serve: %s", os.getpid(), error)  # noqa: TRY400
        return 1
    except BaseException:
        log.exception("worker %d crashed", os.getpid())
        return 1
    return 0


def _spawn(settings: Settings, run: Runner) -> int:
    pid = os.fork()
    if pid == 0:  # the worker
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        code = _run_worker(settings, run)
        logging.shutdown()
        os._exit(code)
    return pid


def run_workers(settings: Settings, run: Runner) -> int:
    """Start ``OXIDICOM_WORKERS`` receivers, each running :func:`serve` with ``run``
    (``asyncio.run`` or ``uvloop.run``); return the exit code once all have stopped."""
    count = settings.listener.workers
    stopping = False

    def stop(signum: int, _: object) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(workers):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    workers: dict[int, float] = {}
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for _ in range(count):
        workers[_spawn(settings, run)] = time.monotonic()
    log.info("started %d worker processes: %s", count, sorted(workers))
    exit_code = 0
    while workers:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        started = workers.pop(pid, None)
        code = os.waitstatus_to_exitcode(status)
        if stopping:
            exit_code = exit_code or (code if code > 0 else 0)
            continue
        log.error("worker %d exited with %d; restarting it", pid, code)
        if started is not None and time.monotonic() - started < 1.0:
            time.sleep(1.0)
        workers[_spawn(settings, run)] = time.monotonic()
    return exit_code
