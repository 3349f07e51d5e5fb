"""A process that fills an outbox and then waits to be killed (see test_outbox.py).

    python -m tests.cube.outbox_child DIRECTORY COUNT [synced|written]

Puts COUNT payloads ``b"entry-{i}"``, waits until they are flushed to disk (``synced``,
the default) or only in their files (``written``), prints its owner id and the stage,
then blocks reading stdin until killed.
"""

from __future__ import annotations

import asyncio
import sys

from oxidicom.cube.outbox import Outbox


async def main(directory: str, count: int, stage: str) -> None:
    outbox = Outbox(directory)
    await outbox.open()
    for i in range(count):
        outbox.put(f"entry-{i}".encode())
    await outbox.flush(synced=stage == "synced")
    print(outbox.owner, flush=True)
    print(stage, flush=True)
    await asyncio.to_thread(sys.stdin.read)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else "synced"))
