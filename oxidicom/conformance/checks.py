"""The catalogue: each named check, the part of PS3.8 it enforces, and how bad a failure is.

Severities are deliberately conservative, so that a finding means something:

* ``critical``: the peer stopped serving (connection refused, or a C-ECHO on a fresh
  association failed) after an input.
* ``error``: the peer did something the standard's text forbids, or failed to do what it
  requires, in a way another conformant implementation can observe.
* ``warning``: a deviation from the letter of PS3.8 that the standard itself makes harmless
  (a field the receiver "shall not test"), a permitted leniency (accepting an over-long
  P-DATA-TF), or closing the connection where the state table says to send an A-ABORT first.
* ``robustness``: no sentence of the standard is broken (PS3.8 sets no timer on answering an
  A-ASSOCIATE-RQ, for instance), but a requestor would be left waiting.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Final

import attrs


class Severity(enum.Enum):
    CRITICAL = "critical"
    ERROR = "error"
    WARNING = "warning"
    ROBUSTNESS = "robustness"

    @property
    def rank(self) -> int:
        return list(Severity).index(self)


@attrs.frozen
class Check:
    name: str
    section: str
    """Where in PS3.8 (or PS3.7) the requirement is."""
    requirement: str
    """What the standard requires, in plain words."""


_CHECKS = (
    # --- answering the first PDU (Sta2) ---------------------------------------------------
    Check(
        "sta2-unrecognized-pdu",
        "PS3.8 §9.3, §9.2 Table 9-10 (Evt19 in Sta2 -> AA-1), Table 9-9",
        "A PDU of a type PS3.8 does not define, sent instead of an A-ASSOCIATE-RQ, is "
        "answered with an A-ABORT (AA-1 names the service-user, source 0) and the peer then "
        "waits for the close.",
    ),
    Check(
        "sta2-unexpected-pdu",
        "PS3.8 §9.2 Table 9-10 (Evt3, 4, 10, 12, 13 in Sta2 -> AA-1), Table 9-9",
        "A valid PDU other than A-ASSOCIATE-RQ (AC, RJ, P-DATA-TF, A-RELEASE-RQ/RP) as the "
        "first PDU is answered with an A-ABORT (AA-1, source 0).",
    ),
    Check(
        "sta2-invalid-associate-rq",
        "PS3.8 §9.3.2, §9.3.2.1-§9.3.2.3, §9.2 Table 9-10 (Evt19 in Sta2 -> AA-1)",
        "An A-ASSOCIATE-RQ whose item lengths do not add up (an item runs past the end of "
        "the PDU or of its parent item) is an invalid PDU: it is answered with an A-ABORT, "
        "not accepted, and never left unanswered.",
    ),
    Check(
        "protocol-version-without-bit-0",
        "PS3.8 §9.3.2 Table 9-11 (Protocol-version), §9.2.2 AE-6, §9.3.4 Table 9-21",
        "A request whose protocol version lacks bit 0 is not acceptable to a version 1 "
        "provider: AE-6 answers it with an A-ASSOCIATE-RJ, naming the service-provider (ACSE) "
        "as source and protocol-version-not-supported as reason (source 2, reason 2).",
    ),
    Check(
        "protocol-version-other-bits",
        "PS3.8 §9.3.2 Table 9-11 (Protocol-version)",
        "A receiver implementing only version 1 shall only test that bit 0 is set: other "
        "bits set besides bit 0 do not change its answer.",
    ),
    Check(
        "reserved-fields-not-tested",
        "PS3.8 §9.3.2 Table 9-11, §9.3.2.1-§9.3.2.3 (Tables 9-12 to 9-16), §9.3.5, §9.3.6",
        "Reserved fields are sent as zero but shall not be tested when received: non-zero "
        "values in them change nothing.",
    ),
    Check(
        "unknown-items-ignored",
        "PS3.8 §9.3 (items of unrecognized types)",
        "Items of unrecognized types in an A-ASSOCIATE-RQ shall be ignored and skipped: the "
        "answer is the same as without them.",
    ),
    Check(
        "unknown-sub-items-ignored",
        "PS3.8 §9.3 (items of unrecognized types), §9.3.2.3, PS3.7 Annex D.3.3",
        "User-information sub-items of types PS3.7/PS3.8 do not define are skipped like "
        "unrecognized items: the answer is the same as without them.",
    ),
    # --- an established association (Sta6) --------------------------------------------------
    Check(
        "sta6-unrecognized-pdu",
        "PS3.8 §9.2 Table 9-10 (Evt19 in Sta6 -> AA-8), Table 9-9, §9.3.8",
        "On an established association a PDU of an undefined type is answered with an "
        "A-ABORT whose source is the service-provider (2) (AA-8); the association does not go "
        "on.",
    ),
    Check(
        "sta6-unexpected-pdu",
        "PS3.8 §9.2 Table 9-10 (Evt3, 4, 6, 13 in Sta6 -> AA-8), Table 9-9",
        "A-ASSOCIATE-RQ, -AC, -RJ or A-RELEASE-RP on an established association (where the "
        "peer is acceptor and did not ask to release) is answered with an A-ABORT from the "
        "service-provider (source 2).",
    ),
    Check(
        "sta6-invalid-pdu",
        "PS3.8 §9.3.5, §9.3.5.1, §9.3.6, §9.2 Table 9-10 (Evt19 in Sta6 -> AA-8)",
        "An invalid PDU on an established association (a PDV item longer than its "
        "P-DATA-TF, a PDV item length below 2, a P-DATA-TF without PDV items, an even "
        "presentation context ID, an A-RELEASE-RQ whose length is not 4) is answered with an "
        "A-ABORT from the service-provider (source 2).",
    ),
    Check(
        "pdv-unaccepted-context",
        "PS3.8 §7.1.1.13, §7.6, §9.3.5.1",
        "PDVs are exchanged on the presentation contexts accepted in the A-ASSOCIATE-AC: a "
        "DIMSE request on a context that was rejected or never proposed is not served as "
        "if it had been accepted.",
    ),
    Check(
        "pdata-max-length",
        "PS3.8 Annex D.1 (Maximum Length Received)",
        "A requestor shall not send a P-DATA-TF longer than the acceptor's Maximum Length "
        "Received; an acceptor MAY be lenient, so accepting one is reported as a warning.",
    ),
    Check(
        "echo-after-rejected-context",
        "PS3.8 §7.1.1.14, §9.3.3.2; PS3.7 Annex D.3.2",
        "Presentation contexts are accepted or rejected one by one: an unsupported abstract "
        "syntax rejects its context, not the association, and C-ECHO on the accepted "
        "Verification context is answered.",
    ),
    # --- whatever the peer sends ------------------------------------------------------------
    Check(
        "associate-ac-valid",
        "PS3.8 §9.3.3 Table 9-17, §9.3.3.2 Table 9-18, §7.1.1.14, Annex D.1",
        "An A-ASSOCIATE-AC sets protocol version bit 0, answers every proposed presentation "
        "context exactly once with a result of Table 9-18 (and an accepted transfer syntax "
        "among those proposed for it), and carries a Maximum Length sub-item.",
    ),
    Check(
        "ac-echoes-request-fields",
        "PS3.8 §9.3.3 Table 9-17 (bytes 11-74)",
        "The A-ASSOCIATE-AC repeats bytes 11-74 of the A-ASSOCIATE-RQ (called and calling AE "
        "titles and the 32 reserved bytes) exactly as received.",
    ),
    Check(
        "reject-fields",
        "PS3.8 §9.3.4 Table 9-21",
        "An A-ASSOCIATE-RJ has result 1 or 2, source 1, 2 or 3, and a reason that Table 9-21 "
        "defines for that source (not a reserved one).",
    ),
    Check(
        "abort-fields",
        "PS3.8 §9.3.8 Table 9-26",
        "An A-ABORT has source 0 or 2 (1 is reserved); with source 2 its reason is one of "
        "0, 1, 2, 4, 5, 6; with source 0 the reason is sent as 0.",
    ),
    Check(
        "reserved-fields-sent-as-zero",
        "PS3.8 §9.3.1-§9.3.8 (every 'Reserved' field)",
        "Reserved fields of the PDUs the peer sends are sent as zero.",
    ),
    Check(
        "peer-pdus-valid",
        "PS3.8 §9.2 Table 9-10, §9.3; Annex D.1",
        "Every PDU the peer sends is well-formed and expected in the requestor's state "
        "(our requestor state machine finds no protocol error in it), and no P-DATA-TF "
        "exceeds our Maximum Length Received.",
    ),
    Check(
        "echo-response",
        "PS3.7 §9.1.5, §9.3.5.2; PS3.4 Annex A",
        "A C-ECHO-RQ on an accepted Verification context is answered by a C-ECHO-RSP with "
        "status Success.",
    ),
    Check(
        "release-answered",
        "PS3.8 §7.2, §9.2 Table 9-10 (Evt12 in Sta6 -> AR-2, then AR-4)",
        "An A-RELEASE-RQ on an established association is answered with an A-RELEASE-RP.",
    ),
    Check(
        "associate-answered",
        "PS3.8 §9.2 (Sta3: no timer)",
        "Robustness: a complete, well-formed A-ASSOCIATE-RQ is answered (AC, RJ or A-ABORT) "
        "within the fuzzer's --timeout. PS3.8 sets no timer in Sta3.",
    ),
    Check(
        "artim-closes-idle-connection",
        "PS3.8 §9.1.5, §9.2 Table 9-10 (Evt18 in Sta2 -> AA-2)",
        "Robustness: a connection on which no complete A-ASSOCIATE-RQ arrives is closed when "
        "the ARTIM timer expires. Its value is the implementation's; the fuzzer waits --artim "
        "seconds.",
    ),
    Check(
        "tcp-segmentation",
        "PS3.8 §9.1.1, §9.1.3 (TCP is a byte stream)",
        "Robustness: the same PDUs cut at arbitrary points into TCP segments get the same answers.",
    ),
    Check(
        "peer-alive",
        "(none: service availability)",
        "After every input the peer still accepts a connection and answers a C-ECHO on a "
        "fresh association.",
    ),
)

CHECKS: Final[Mapping[str, Check]] = {check.name: check for check in _CHECKS}
"""Every check, by name, in report order."""
