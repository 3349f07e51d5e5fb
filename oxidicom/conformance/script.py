"""What the fuzzer sends on one connection: a :class:`Script` of :class:`Step` values.

A script is data, not code: every byte it puts on the wire is in it, so a finding's
reproducer is the script itself (stored as hex in the report, replayed with ``--replay``).
Each step also says how our *requestor* state machine sees it: the A-ASSOCIATE-RQ it
believes it proposed (the bytes on the wire may be a damaged version of it), and the C-ECHO
and A-RELEASE it issues as primitives. Injected steps go on the wire behind its back.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from typing import Final

import attrs

from oxidicom.dimse.messages import CEchoRQ, CStoreRQ, encode_message
from oxidicom.ul.constants import PduType
from oxidicom.ul.items import PresentationContextRQ, UserInformation
from oxidicom.ul.pdus import AAssociateRQ, AReleaseRQ, decode_pdu, encode_pdu, pdata_header

VERIFICATION: Final = "1.2.840.10008.1.1"
SECONDARY_CAPTURE: Final = "1.2.840.10008.5.1.4.1.1.7"
IMPLICIT_VR_LE: Final = "1.2.840.10008.1.2"
EXPLICIT_VR_LE: Final = "1.2.840.10008.1.2.1"
IMPLEMENTATION_CLASS_UID: Final = "1.2.826.0.1.3680043.10.1341.4"
IMPLEMENTATION_VERSION_NAME: Final = "OXIDICOM-FUZZ"
ECHO_CONTEXT: Final = 1
"""Every request the fuzzer builds proposes Verification as context 1."""
STORE_CONTEXT: Final = 3
"""... and, where it needs one, Secondary Capture Image Storage as context 3."""


class Act(enum.Enum):
    """What a step does, and what the fuzzer waits for after it."""

    ASSOCIATE = "associate"
    """Open the connection and send the A-ASSOCIATE-RQ; wait for AC, RJ, A-ABORT or close."""
    INJECT = "inject"
    """Send bytes the requestor state machine does not know about; wait for a reaction."""
    ECHO = "echo"
    """C-ECHO on ``context_id`` through the requestor; wait for the response."""
    RELEASE = "release"
    """A-RELEASE through the requestor; wait for A-RELEASE-RP."""
    IDLE = "idle"
    """Send ``wire`` (possibly nothing) and wait up to ``seconds`` for the peer to close."""


@attrs.frozen
class Step:
    act: Act
    wire: bytes
    """Exactly what goes on the wire."""
    note: str
    """What it is, in plain words: "A-ASSOCIATE-RQ with protocol version 0x0002"."""
    request: AAssociateRQ | None = None
    """ASSOCIATE: the request the requestor state machine believes it sent."""
    context_id: int = 0
    """ECHO: the presentation context of the C-ECHO."""
    seconds: float | None = None
    """IDLE: how long to wait for the close."""
    cuts: tuple[int, ...] = ()
    """ASSOCIATE, INJECT, IDLE: offsets at which ``wire`` is cut into separate writes."""


FactValue = int | str


@attrs.frozen
class Script:
    """The steps of one connection, and what the judges need to know about them."""

    steps: tuple[Step, ...]
    facts: Mapping[str, FactValue] = attrs.field(factory=dict, eq=False)
    """Judge parameters (e.g. ``{"version": 2}``); kept in the report."""

    @property
    def size(self) -> tuple[int, int]:
        """Shorter is simpler: the order in which reproducers are kept."""
        return (sum(len(step.wire) for step in self.steps), len(self.steps))

    def fact(self, name: str, default: FactValue = "") -> FactValue:
        return self.facts.get(name, default)


# --- building blocks ----------------------------------------------------------------------


def request(
    *,
    calling_ae_title: str = "OXIDICOM-FUZZ",
    called_ae_title: str = "ANY-SCP",
    contexts: Sequence[PresentationContextRQ] | None = None,
    max_length: int = 16384,
    store: bool = False,
) -> AAssociateRQ:
    """A plain A-ASSOCIATE-RQ: Verification as context 1 (and Secondary Capture as 3)."""
    if contexts is None:
        contexts = [PresentationContextRQ(ECHO_CONTEXT, VERIFICATION, (IMPLICIT_VR_LE,))]
        if store:
            contexts.append(
                PresentationContextRQ(STORE_CONTEXT, SECONDARY_CAPTURE, (IMPLICIT_VR_LE,))
            )
    return AAssociateRQ(
        called_ae_title=called_ae_title,
        calling_ae_title=calling_ae_title,
        presentation_contexts=tuple(contexts),
        user_information=UserInformation(
            maximum_length=max_length,
            implementation_class_uid=IMPLEMENTATION_CLASS_UID,
            implementation_version_name=IMPLEMENTATION_VERSION_NAME,
        ),
    )


def associate(rq: AAssociateRQ, wire: bytes | None = None, note: str = "") -> Step:
    """Send ``rq`` (or ``wire``, a variant of it) as the A-ASSOCIATE-RQ."""
    encoded = encode_pdu(rq)
    return Step(
        Act.ASSOCIATE,
        encoded if wire is None else wire,
        note or "A-ASSOCIATE-RQ",
        request=rq,
    )


def echo_wire(context_id: int = ECHO_CONTEXT, message_id: int = 1) -> bytes:
    """A C-ECHO-RQ as one P-DATA-TF: what the requestor sends for :func:`echo`."""
    command = encode_message(CEchoRQ(message_id))
    return pdata_header(context_id, True, True, len(command)) + command


def echo(context_id: int = ECHO_CONTEXT, message_id: int = 1) -> Step:
    return Step(
        Act.ECHO,
        echo_wire(context_id, message_id),
        f"C-ECHO-RQ on presentation context {context_id}",
        context_id=context_id,
    )


def release() -> Step:
    return Step(Act.RELEASE, encode_pdu(AReleaseRQ()), "A-RELEASE-RQ")


def inject(wire: bytes, note: str) -> Step:
    return Step(Act.INJECT, wire, note)


def idle(wire: bytes, seconds: float, note: str) -> Step:
    return Step(Act.IDLE, wire, note, seconds=seconds)


def store_command(
    context_id: int, instance_uid: str, *, message_id: int = 1, sop_class: str = SECONDARY_CAPTURE
) -> bytes:
    """A C-STORE-RQ command set as one P-DATA-TF."""
    command = encode_message(CStoreRQ(message_id, sop_class, instance_uid))
    return pdata_header(context_id, True, True, len(command)) + command


def sample_data_set(instance_uid: str, padding: int) -> bytes:
    """A small Implicit VR Little Endian Secondary Capture data set, grown by ``padding``
    bytes of a private element: enough for a storage SCP to accept or refuse it."""
    elements = [
        (0x00080016, SECONDARY_CAPTURE.encode() + b"\x00"),
        (0x00080018, _even(instance_uid.encode(), b"\x00")),
        (0x00080020, b"20240101"),
        (0x00080060, b"OT"),
        (0x00090010, b"OXIDICOM"),
        (0x00091010, bytes(padding + padding % 2)),
        (0x00100010, b"CONFORMANCE^FUZZ"),
        (0x00100020, b"OXIDICOM-FUZZ "),
        (0x0020000D, _even(instance_uid.encode() + b".1", b"\x00")),
        (0x0020000E, _even(instance_uid.encode() + b".2", b"\x00")),
    ]
    out = bytearray()
    for tag, value in elements:
        out += (tag >> 16).to_bytes(2, "little") + (tag & 0xFFFF).to_bytes(2, "little")
        out += len(value).to_bytes(4, "little") + value
    return bytes(out)


def _even(value: bytes, pad: bytes) -> bytes:
    return value + pad if len(value) % 2 else value


# --- JSON ---------------------------------------------------------------------------------


def step_to_json(step: Step) -> dict[str, object]:
    out: dict[str, object] = {"act": step.act.value, "note": step.note, "wire": step.wire.hex()}
    if step.request is not None:
        out["request"] = encode_pdu(step.request).hex()
    if step.act is Act.ECHO:
        out["context_id"] = step.context_id
    if step.seconds is not None:
        out["seconds"] = step.seconds
    if step.cuts:
        out["cuts"] = list(step.cuts)
    return out


def step_from_json(data: Mapping[str, object]) -> Step:
    request_hex = data.get("request")
    rq = None
    if isinstance(request_hex, str):
        raw = bytes.fromhex(request_hex)
        decoded = decode_pdu(PduType.A_ASSOCIATE_RQ, raw[6:])
        assert isinstance(decoded, AAssociateRQ)
        rq = decoded
    seconds = data.get("seconds")
    context_id = data.get("context_id", 0)
    cuts = data.get("cuts", [])
    return Step(
        Act(str(data["act"])),
        bytes.fromhex(str(data["wire"])),
        str(data["note"]),
        request=rq,
        context_id=int(context_id) if isinstance(context_id, int) else 0,
        seconds=float(seconds) if isinstance(seconds, int | float) else None,
        cuts=tuple(int(cut) for cut in cuts) if isinstance(cuts, list) else (),
    )


def script_to_json(script: Script) -> dict[str, object]:
    return {
        "steps": [step_to_json(step) for step in script.steps],
        "facts": dict(script.facts),
    }


def script_from_json(data: Mapping[str, object]) -> Script:
    steps = data.get("steps")
    facts = data.get("facts", {})
    if not isinstance(steps, list) or not isinstance(facts, dict):
        raise TypeError("a script needs a list of steps and a dict of facts")
    return Script(
        tuple(step_from_json(step) for step in steps),
        {str(k): v for k, v in facts.items() if isinstance(v, int | str)},
    )
