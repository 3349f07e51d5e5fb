"""Hypothesis shrinks a failing input to a minimal reproducer: a server with a planted bug."""

from __future__ import annotations

from oxidicom.conformance.script import Act, request
from oxidicom.ul.pdus import AAssociateRQ, encode_pdu
from tests.conformance.conftest import App, fuzz, quick, start_server


def _refuses_high_item_types(rq: AAssociateRQ) -> bool:
    """The planted bug: reject a request carrying an unknown item of type 0x80 or more,
    where PS3.8 §9.3 says to ignore it."""
    return any(item.item_type >= 0x80 for item in rq.unknown_items)


async def test_minimal_reproducer_of_a_planted_bug() -> None:
    server = await start_server(App(refuse=_refuses_high_item_types))
    try:
        report = await fuzz(server.port, quick(probes=("unknown-items",), examples=30))
    finally:
        await server.close(grace=2.0)

    (finding,) = report.findings
    assert (finding.verdict.check, finding.verdict.code) == (
        "unknown-items-ignored",
        "answer-changed",
    )
    assert finding.reproduced == (1, 1)
    associate = finding.script.steps[0]
    assert associate.act is Act.ASSOCIATE
    # The smallest failing input: one item of the smallest failing type (0x80), no data,
    # inserted right after the fixed fields (byte 75), the PDU-length grown by 4.
    plain = bytearray(encode_pdu(request(store=True)))
    plain[74:74] = b"\x80\x00\x00\x00"
    plain[2:6] = (len(plain) - 6).to_bytes(4, "big")
    assert associate.wire == bytes(plain)
