"""The blocking SCU against DCMTK's storescp, a real peer: what it sends is what was asked.

The reliability and fuzz suites use it against our own receiver in many more ways (half
data sets, pipelined requests, resets, hostile AE titles); these tests hold its own promises
against someone else's SCP.
"""

from __future__ import annotations

import socket
import threading

import pytest

from oxidicom.net import AssociationAbortedError, NoContextError
from oxidicom.testing.scu import VERIFICATION, BlockingScu
from tests.peers.dcmtk import StorescpFactory
from tests.reliability.support import CT_IMAGE_STORAGE, IMPLICIT_VR_LE, make_series

pytestmark = [pytest.mark.interop]

CONTEXTS = ((VERIFICATION, (IMPLICIT_VR_LE,)), (CT_IMAGE_STORAGE, (IMPLICIT_VR_LE,)))


def test_echo_store_and_release(storescp_factory: StorescpFactory) -> None:
    scp = storescp_factory(bit_preserving=True)
    [instance] = make_series(1, pixel_bytes=40_000)  # several PDUs of 16 KiB

    with BlockingScu(scp.host, scp.port, contexts=CONTEXTS, calling_ae_title="BLOCKING") as scu:
        assert scu.echo() == 0
        response = scu.store(instance.sop_class_uid, instance.sop_instance_uid, instance.data_set)
        assert response.status == 0
        assert response.affected_sop_instance_uid == instance.sop_instance_uid
        scu.release()

    (stored,) = scp.wait_for(1)
    assert stored.calling_aet == "BLOCKING"
    assert stored.path.read_bytes().endswith(instance.data_set)  # +B keeps it as sent


def test_requests_can_go_out_before_any_response_is_read(
    storescp_factory: StorescpFactory,
) -> None:
    scp = storescp_factory(bit_preserving=True)
    series = make_series(3)

    with BlockingScu(scp.host, scp.port, contexts=CONTEXTS) as scu:
        for instance in series:
            scu.send_store(
                instance.sop_class_uid, instance.sop_instance_uid, instance.data_set, flush=False
            )
        scu.flush()
        responses = [scu.response() for _ in series]
        scu.release()

    assert [response.status for response in responses] == [0, 0, 0]  # type: ignore[union-attr]
    assert len(scp.wait_for(3)) == 3


def test_a_context_the_peer_refused_is_an_error_not_a_send(
    storescp_factory: StorescpFactory,
) -> None:
    scp = storescp_factory()
    private = "1.2.3.4.5.6.7"
    with BlockingScu(scp.host, scp.port, contexts=[*CONTEXTS, (private, (IMPLICIT_VR_LE,))]) as scu:
        with pytest.raises(NoContextError, match="no accepted presentation context"):
            scu.store(private, "1.2.3", b"")
        assert scu.echo() == 0  # nothing was sent: the association is as it was
        scu.abort()


def test_a_peer_that_says_nothing_is_an_error_after_the_timeout() -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, never answers
        port = silent.getsockname()[1]
        with pytest.raises(AssociationAbortedError, match=r"nothing from the peer in 0\.3 s"):
            BlockingScu("127.0.0.1", port, contexts=CONTEXTS, timeout=0.3)


def test_a_peer_that_hangs_up_is_an_error() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]

        def hang_up() -> None:
            connection, _ = server.accept()
            connection.recv(1024)
            connection.close()

        thread = threading.Thread(target=hang_up)
        thread.start()
        with pytest.raises(AssociationAbortedError, match="association ended"):
            BlockingScu("127.0.0.1", port, contexts=CONTEXTS, timeout=5)
        thread.join()
