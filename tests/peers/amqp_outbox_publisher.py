"""A registration publisher in a process of its own, so a test can SIGKILL it.

    python -m tests.peers.amqp_outbox_publisher OUTBOX_DIR AMQP_URL QUEUE

Runs an :class:`~oxidicom.cube.outbox.Outbox` over ``OUTBOX_DIR`` delivered by an
:class:`~oxidicom.cube.amqp_publisher.AmqpPublisher`. Protocol on stdin/stdout, one line
each: it prints ``open N`` once the outbox is open (N entries taken over from dead
owners); each stdin line is the JSON kwargs of a series registration, answered by
``durable TASK_ID`` once that registration is on disk. SIGTERM closes everything cleanly.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys

from oxidicom.cube.amqp_publisher import AmqpPublisher
from oxidicom.cube.celery_message import SeriesRegistration, registration_message
from oxidicom.cube.outbox import Outbox


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def main(outbox_dir: str, url: str, queue: str) -> None:
    outbox = Outbox(outbox_dir)
    await outbox.open()
    _say(f"open {len(outbox)}")
    publisher = AmqpPublisher(url, queue, outbox, retry_max=1.0)
    publisher.start()

    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    reader = asyncio.StreamReader()
    await asyncio.get_running_loop().connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), sys.stdin
    )

    async def serve_stdin() -> None:
        while line := await reader.readline():
            message = registration_message(SeriesRegistration(**json.loads(line)))
            outbox.put(message.to_json())
            await outbox.flush()
            _say(f"durable {message.task_id}")

    serving = asyncio.create_task(serve_stdin())
    await stop.wait()
    serving.cancel()
    await publisher.aclose(timeout=5.0)
    await outbox.aclose()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    asyncio.run(main(*sys.argv[1:4]))
