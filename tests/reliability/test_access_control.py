"""Access control: calling AE titles, the called AE title, peer addresses, and how many
associations one peer may hold.

Every test connects over loopback; the whole of 127.0.0.0/8 is loopback on Linux, so a
client bound to 127.0.0.2 is a second peer on the same host.
"""

from __future__ import annotations

import socket

import pytest

from oxidicom.net import AssociationAbortedError, AssociationRejectedError
from tests.peers.dcmtk import echoscu
from tests.peers.oxidicom_receiver import Receiver, ReceiverFactory
from tests.reliability.support import (
    Scu,
    make_series,
    stored_files,
)

pytestmark = [pytest.mark.interop]

CALLING_AE_NOT_RECOGNIZED = (1, 1, 3)
CALLED_AE_NOT_RECOGNIZED = (1, 1, 7)
LOCAL_LIMIT_EXCEEDED = (2, 3, 2)


def _rejection(receiver: Receiver, **kwargs: object) -> tuple[int, int, int]:
    with pytest.raises(AssociationRejectedError) as rejected:
        Scu(receiver.host, receiver.port, **kwargs)  # type: ignore[arg-type]
    return rejected.value.triple


def _echo(receiver: Receiver, **kwargs: object) -> int:
    scu = Scu(receiver.host, receiver.port, **kwargs)  # type: ignore[arg-type]
    status = scu.echo()
    scu.release()
    return status


def test_allowed_calling_ae_titles(receiver_factory: ReceiverFactory) -> None:
    receiver = receiver_factory(OXIDICOM_ALLOWED_CALLING_AETS="GOOD, ALSO-GOOD")
    assert _rejection(receiver, calling_ae_title="EVIL") == CALLING_AE_NOT_RECOGNIZED
    assert _rejection(receiver, calling_ae_title="GOOD2") == CALLING_AE_NOT_RECOGNIZED
    assert _echo(receiver, calling_ae_title="GOOD") == 0
    assert _echo(receiver, calling_ae_title="ALSO-GOOD") == 0
    # A real peer sees the same rejection.
    result = echoscu(receiver.host, receiver.port, calling_aet="EVIL")
    assert not result.ok
    assert "Calling AE Title Not Recognized" in result.stderr, result.stderr
    echoscu(receiver.host, receiver.port, calling_aet="GOOD").check()
    # Nothing from a refused AE title is stored.
    with pytest.raises(AssociationRejectedError):
        Scu(receiver.host, receiver.port, calling_ae_title="EVIL")
    assert stored_files(receiver.files_root) == []


def test_called_ae_title_checked(receiver_factory: ReceiverFactory) -> None:
    receiver = receiver_factory(OXIDICOM_CHECK_CALLED_AET="true", OXIDICOM_SCP_AET="CHRISRX")
    assert _rejection(receiver, called_ae_title="ANY-SCP") == CALLED_AE_NOT_RECOGNIZED
    assert _rejection(receiver, called_ae_title="chrisrx") == CALLED_AE_NOT_RECOGNIZED
    assert _echo(receiver, called_ae_title="CHRISRX") == 0
    result = echoscu(receiver.host, receiver.port, called_aet="ANY-SCP")
    assert not result.ok
    assert "Called AE Title Not Recognized" in result.stderr, result.stderr
    echoscu(receiver.host, receiver.port, called_aet="CHRISRX").check()


def _dropped(receiver: Receiver, source_host: str) -> bool:
    """Whether a connection from ``source_host`` is closed before any PDU comes back."""
    with socket.socket() as sock:
        sock.bind((source_host, 0))
        sock.settimeout(30)
        sock.connect((receiver.host, receiver.port))
        try:
            sock.sendall(b"\x01\x00")  # the start of an A-ASSOCIATE-RQ
            return sock.recv(1) == b""
        except (ConnectionResetError, BrokenPipeError):
            return True


def test_allowed_peers_drop_other_addresses(receiver_factory: ReceiverFactory) -> None:
    receiver = receiver_factory(OXIDICOM_ALLOWED_PEERS="10.0.0.0/8")
    assert _dropped(receiver, "127.0.0.1")
    with pytest.raises((AssociationAbortedError, ConnectionResetError, BrokenPipeError)):
        Scu(receiver.host, receiver.port)
    assert not echoscu(receiver.host, receiver.port).ok


def test_allowed_peers_admit_listed_addresses(receiver_factory: ReceiverFactory) -> None:
    receiver = receiver_factory(OXIDICOM_ALLOWED_PEERS="10.0.0.0/8, 127.0.0.2")
    assert _echo(receiver, source_host="127.0.0.2") == 0
    assert _dropped(receiver, "127.0.0.1")
    assert _dropped(receiver, "127.0.0.3")


def test_one_peer_cannot_take_every_slot(receiver_factory: ReceiverFactory) -> None:
    receiver = receiver_factory(
        OXIDICOM_MAX_ASSOCIATIONS_PER_PEER="2", OXIDICOM_LISTENER_THREADS="4"
    )
    greedy = [Scu(receiver.host, receiver.port, source_host="127.0.0.1") for _ in range(2)]
    # The third from the same address is refused at once, transiently...
    assert _rejection(receiver, source_host="127.0.0.1") == LOCAL_LIMIT_EXCEEDED
    # ...while another peer still gets in and stores.
    other = Scu(receiver.host, receiver.port, source_host="127.0.0.2")
    [instance] = make_series(1)
    assert other.store_instance(instance).status == 0
    other.release()
    # One of the greedy peer's associations ends: it may open another.
    greedy.pop().release()
    assert _echo(receiver, source_host="127.0.0.1") == 0
    for scu in greedy:
        scu.release()
