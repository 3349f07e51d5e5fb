"""Bytes 11-74 of our A-ASSOCIATE-AC repeat the request's (PS3.8 Table 9-17), which the
fuzzer's ``ac-echoes-request-fields`` check found our acceptor did not do."""

from __future__ import annotations

import attrs
from hypothesis import given
from hypothesis import strategies as st

from oxidicom.testing import strategies as ul
from oxidicom.ul.actions import Role
from oxidicom.ul.association import Association
from oxidicom.ul.constants import APPLICATION_CONTEXT_NAME, PduType
from oxidicom.ul.events import AssociationRequested
from oxidicom.ul.negotiation import AcceptorPolicy, negotiate
from oxidicom.ul.pdus import AAssociateAC, AAssociateRQ, decode_pdu, encode_pdu

POLICY = AcceptorPolicy(
    ae_title="ANY",
    transfer_syntaxes=ul.WELL_KNOWN_UIDS,
    abstract_syntaxes=None,
    implementation_class_uid="1.2.3",
)

_FIXED = st.binary(min_size=64, max_size=64).filter(
    lambda raw: bool(raw[:16].strip(b" \0") and raw[16:32].strip(b" \0"))
)
"""Bytes 11-74 of a request: any AE title padding (not blank), any reserved bytes."""


@given(ul.a_associate_rqs(), _FIXED)
def test_ac_repeats_bytes_11_to_74(request: AAssociateRQ, fixed: bytes) -> None:
    request = attrs.evolve(
        request, protocol_version=1, application_context_name=APPLICATION_CONTEXT_NAME
    )
    wire = bytearray(encode_pdu(request))
    wire[10:74] = fixed
    association = Association(Role.ACCEPTOR)
    association.connection_made(0.0)
    association.receive_data(bytes(wire), 0.0)
    event = association.next_event()
    assert isinstance(event, AssociationRequested)
    answer = negotiate(event.request, POLICY)
    assert isinstance(answer, AAssociateAC)

    association.accept(answer, 0.0)

    sent = b"".join(association.data_to_send())
    assert sent[0] == PduType.A_ASSOCIATE_AC
    assert sent[10:74] == fixed
    # Only the echo is verbatim: the AC decodes to the answer given.
    assert decode_pdu(PduType.A_ASSOCIATE_AC, sent[6:]) == answer
