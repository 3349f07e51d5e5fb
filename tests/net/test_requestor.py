"""The asyncio requestor against a peer that stops reading: it gives up, and lets go."""

from __future__ import annotations

import asyncio

import pytest

from oxidicom.net import AssociationAbortedError
from oxidicom.net.requestor import RequestorConfig, associate, propose
from tests.net.test_acceptor import CT_IMAGE, IMPLICIT, App, StuckSink, serving


async def test_a_peer_that_stops_reading_the_data_set_is_aborted_and_dropped() -> None:
    # The SCP's disk hangs (its sink never returns), so it stops reading; our data set
    # fills both socket buffers. After dimse_timeout the association is aborted, and the
    # connection closed at once: the A-ABORT queued behind unread data must not keep it.
    async with serving(App(StuckSink)) as server:
        config = RequestorConfig(called_ae_title="TEST-SCP", dimse_timeout=0.5)
        contexts = propose([(CT_IMAGE, [IMPLICIT])])
        association = await associate("127.0.0.1", server.port, contexts, config)
        with pytest.raises(AssociationAbortedError, match="read nothing"):
            await association.store_data_set(CT_IMAGE, "1.2.3", IMPLICIT, bytes(64 << 20))
        await asyncio.wait_for(association.release(), 5)  # the connection is gone already
