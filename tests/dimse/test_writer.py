"""send_message: a command set in fragments the peer accepts, the last one flagged."""

from __future__ import annotations

import pytest

from oxidicom.dimse.messages import CStoreRQ, encode_message
from oxidicom.dimse.writer import UNLIMITED_FRAGMENT_LENGTH, fragment_length, send_message
from oxidicom.ul.actions import Role
from oxidicom.ul.association import Association
from oxidicom.ul.events import AssociationRequested
from oxidicom.ul.items import PresentationContextAC, PresentationContextRQ, UserInformation
from oxidicom.ul.pdus import (
    AAssociateAC,
    AAssociateRQ,
    PDataTF,
    PresentationDataValue,
    decode_pdu,
    encode_pdu,
)

CT = "1.2.840.10008.5.1.4.1.1.2"
IMPLICIT = "1.2.840.10008.1.2"
MESSAGE = CStoreRQ(7, CT, "1.2.3.4.5.6.7", move_originator_aet="PACS")


def established(peer_max: int) -> Association:
    association = Association(Role.ACCEPTOR)
    association.connection_made(0.0)
    request = AAssociateRQ(
        "A", "B", (PresentationContextRQ(1, CT, (IMPLICIT,)),), UserInformation(peer_max)
    )
    association.receive_data(encode_pdu(request), 0.0)
    assert isinstance(association.next_event(), AssociationRequested)
    answer = AAssociateAC("A", "B", (PresentationContextAC(1, 0, IMPLICIT),), UserInformation(0))
    association.accept(answer, 0.0)
    association.data_to_send()
    return association


def sent_pdvs(association: Association) -> list[PresentationDataValue]:
    wire = b"".join(bytes(part) for part in association.data_to_send())
    pdvs: list[PresentationDataValue] = []
    while wire:
        end = 6 + int.from_bytes(wire[2:6], "big")
        pdu = decode_pdu(wire[0], wire[6:end])
        assert isinstance(pdu, PDataTF)
        assert len(pdu.values) == 1
        pdvs += pdu.values
        wire = wire[end:]
    return pdvs


@pytest.mark.parametrize(("peer_max", "size"), [(50, 44), (0, UNLIMITED_FRAGMENT_LENGTH), (3, 1)])
def test_fragments_fit_the_peers_maximum(peer_max: int, size: int) -> None:
    association = established(peer_max)
    assert fragment_length(association) == size
    send_message(association, 1, MESSAGE, 1.0)
    pdvs = sent_pdvs(association)
    wire = encode_message(MESSAGE)
    assert b"".join(pdv.data for pdv in pdvs) == wire
    assert len(pdvs) == -(-len(wire) // size)
    assert all(len(pdv.data) <= size for pdv in pdvs)
    assert [pdv.is_last for pdv in pdvs] == [False] * (len(pdvs) - 1) + [True]
    assert all(pdv.is_command and pdv.context_id == 1 for pdv in pdvs)
