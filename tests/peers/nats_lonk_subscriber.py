"""A NATS subscriber that records LONK messages per subject, and the contract's rules for them.

Use from any test::

    recorder = await LonkRecorder.subscribe("127.0.0.1:4222", f"oxidicom.{aet}.>")
    ...  # push DICOM
    await recorder.wait_until(lambda r: r.done(subject))
    assert_lonk_series(recorder.messages[subject], final=3)
    await recorder.aclose()
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Callable

import nats.aio.client
import nats.aio.msg

from oxidicom.cube import lonk
from oxidicom.cube.nats_publisher import nats_url

_POLL = 0.02


class LonkRecorder:
    """Every message received on a subject pattern, decoded, per subject, in order."""

    def __init__(self, client: nats.aio.client.Client) -> None:
        self._client = client
        self.messages: defaultdict[str, list[lonk.Message]] = defaultdict(list)

    @classmethod
    async def subscribe(cls, address: str, pattern: str) -> LonkRecorder:
        client = nats.aio.client.Client()
        await client.connect(servers=[nats_url(address)], allow_reconnect=False)
        recorder = cls(client)
        await client.subscribe(pattern, cb=recorder._on_message)
        await client.flush()  # the server knows the subscription before anyone publishes
        return recorder

    async def _on_message(self, message: nats.aio.msg.Msg) -> None:
        self.messages[message.subject].append(lonk.decode(message.data))

    def done(self, subject: str, times: int = 1) -> bool:
        """Whether ``subject`` got ``done`` at least ``times`` times."""
        return self.messages.get(subject, []).count(lonk.Done()) >= times

    async def wait_until(
        self, condition: Callable[[LonkRecorder], bool], timeout: float = 20.0
    ) -> None:
        deadline = time.monotonic() + timeout
        while not condition(self):
            if time.monotonic() > deadline:
                raise AssertionError(f"NATS messages after {timeout:g} s: {dict(self.messages)}")
            await asyncio.sleep(_POLL)

    async def aclose(self) -> None:
        await self._client.close()


def assert_lonk_series(messages: list[lonk.Message], *, final: int) -> None:
    """Contract §4 for the messages of one series in one association.

    Progress counts start at 1 and only increase; errors may come anywhere before the end;
    the last two messages are the final count and ``done``.
    """
    assert messages[-2:] == [lonk.Progress(final), lonk.Done()], messages
    counts = [m.count for m in messages[:-2] if isinstance(m, lonk.Progress)]
    if counts:
        assert counts[0] == 1, messages
    assert counts == sorted(set(counts)), messages
    assert all(count <= final for count in counts), messages
    assert lonk.Done() not in messages[:-1], messages
