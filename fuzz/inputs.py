"""What the harness feeds the acceptor: generated conversations, and mutations of recorded ones.

A conversation is what a requestor sends on one connection: an A-ASSOCIATE-RQ, P-DATA-TF
PDUs carrying DIMSE messages (C-ECHO, C-STORE with its data set, other commands), and a
release or an abort. :func:`conversations` generates them with hypothesis (and damages some
PDUs with :mod:`oxidicom.testing.strategies`); :class:`Mutator` damages seed conversations
(recorded sessions of real peers, and synthetic ones) with a plain :class:`random.Random`,
which is much faster and is what long runs use.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Final

import attrs
from hypothesis import strategies as st

from fuzz.target import Step, Wait
from oxidicom.dimse.messages import (
    CEchoRQ,
    CStoreRQ,
    Message,
    OtherCommand,
    encode_message,
)
from oxidicom.testing import strategies as ul
from oxidicom.ul.constants import APPLICATION_CONTEXT_NAME, PDU_HEADER_LENGTH
from oxidicom.ul.items import PresentationContextRQ, UserInformation
from oxidicom.ul.pdus import (
    AAbort,
    AAssociateRQ,
    AReleaseRQ,
    PDataTF,
    PresentationDataValue,
    encode_pdu,
)

CORPUS_DIR: Final = Path(__file__).parent / "corpus"

VERIFICATION: Final = "1.2.840.10008.1.1"
CT_IMAGE_STORAGE: Final = "1.2.840.10008.5.1.4.1.1.2"
MR_IMAGE_STORAGE: Final = "1.2.840.10008.5.1.4.1.1.4"
IMPLICIT_VR_LE: Final = "1.2.840.10008.1.2"
EXPLICIT_VR_LE: Final = "1.2.840.10008.1.2.1"
_SOP_CLASSES: Final = (VERIFICATION, CT_IMAGE_STORAGE, MR_IMAGE_STORAGE)
_TRANSFER_SYNTAXES: Final = (IMPLICIT_VR_LE, EXPLICIT_VR_LE, "1.2.840.10008.1.2.4.50")
WAITS: Final = (1.0, 31.0, 61.0, 1000.0)
"""Pauses worth making: nothing, past ARTIM (30 s), past the idle timeout (60 s), forever."""


@attrs.frozen
class FuzzInput:
    """One connection's worth of input, and how it was made (for the summary)."""

    steps: tuple[Step, ...]
    label: str

    @property
    def data(self) -> bytes:
        """The bytes of the input, without its pauses and chunking."""
        return b"".join(step for step in self.steps if isinstance(step, bytes))


def split_pdus(stream: bytes) -> list[bytes]:
    """Cut a byte stream at its PDU headers (a trailing incomplete PDU is kept as is)."""
    pdus: list[bytes] = []
    pos = 0
    while pos < len(stream):
        length = int.from_bytes(stream[pos + 2 : pos + 6], "big")
        end = min(len(stream), pos + PDU_HEADER_LENGTH + length)
        pdus.append(stream[pos:end])
        pos = end
    return pdus


# --- valid conversations --------------------------------------------------------------------


@attrs.frozen
class Operation:
    """A DIMSE request on a context, with the data set that follows it (if any)."""

    context_id: int
    message: Message
    data_set: bytes | None = None


def conversation(
    request: AAssociateRQ,
    operations: Iterable[Operation],
    *,
    fragment: int = 16378,
    ending: str = "release",
) -> list[bytes]:
    """The PDUs a requestor sends: ``request``, the operations as P-DATA-TF PDUs of one PDV
    of at most ``fragment`` bytes, then ``ending`` ("release", "abort" or "none")."""
    pdus = [encode_pdu(request)]
    for operation in operations:
        parts = [(True, encode_message(operation.message))]
        if operation.data_set is not None:
            parts.append((False, operation.data_set))
        for is_command, payload in parts:
            pieces = [payload[i : i + fragment] for i in range(0, len(payload), fragment)]
            for index, piece in enumerate(pieces or [b""]):
                pdv = PresentationDataValue(
                    operation.context_id, is_command, index == len(pieces) - 1, piece
                )
                pdus.append(encode_pdu(PDataTF((pdv,))))
    if ending == "release":
        pdus.append(encode_pdu(AReleaseRQ()))
    elif ending == "abort":
        pdus.append(encode_pdu(AAbort()))
    return pdus


def plausible_request(contexts: Sequence[tuple[int, str, Sequence[str]]]) -> AAssociateRQ:
    return AAssociateRQ(
        called_ae_title="FUZZ-SCP",
        calling_ae_title="FUZZ-SCU",
        presentation_contexts=tuple(
            PresentationContextRQ(cid, sop, tuple(tss)) for cid, sop, tss in contexts
        ),
        user_information=UserInformation(
            maximum_length=16384,
            implementation_class_uid="1.2.826.0.1.3680043.10.1341.98",
            implementation_version_name="FUZZ-SCU",
        ),
    )


def synthetic_seeds() -> list[tuple[str, list[bytes]]]:
    """Conversations built here, alongside the recorded corpus: every ending, small
    fragments, an unknown command, several contexts."""
    request = plausible_request(
        [
            (1, VERIFICATION, [IMPLICIT_VR_LE]),
            (3, CT_IMAGE_STORAGE, [EXPLICIT_VR_LE, IMPLICIT_VR_LE]),
            (5, MR_IMAGE_STORAGE, [IMPLICIT_VR_LE]),
        ]
    )
    data_set = bytes(range(256)) * 8
    store = Operation(3, CStoreRQ(2, CT_IMAGE_STORAGE, "1.2.3.4.5.6"), data_set)
    echo = Operation(1, CEchoRQ(1))
    find = Operation(5, OtherCommand(0x0020, 3, MR_IMAGE_STORAGE, True), b"\x08\x00\x52\x00")
    return [
        ("synthetic-echo-release", conversation(request, [echo])),
        ("synthetic-store-small-fragments", conversation(request, [echo, store], fragment=100)),
        ("synthetic-find-abort", conversation(request, [find, store], ending="abort")),
        ("synthetic-store-no-ending", conversation(request, [store], ending="none")),
    ]


def load_seeds(directory: Path = CORPUS_DIR) -> list[tuple[str, list[bytes]]]:
    """The recorded corpus (``*.bin``, each one connection's bytes) and the synthetic seeds."""
    recorded = [
        (path.stem, split_pdus(path.read_bytes())) for path in sorted(directory.glob("*.bin"))
    ]
    return recorded + synthetic_seeds()


# --- generated conversations (hypothesis) ---------------------------------------------------


@attrs.frozen
class _DrawnOperation:
    """An operation whose context is picked once the request is known: the ``slot``-th
    proposed context (modulo their number), or ``context_id`` itself when that is set."""

    operation: Operation
    slot: int
    context_id: int | None

    def on(self, context_ids: Sequence[int]) -> Operation:
        if self.context_id is not None:
            return attrs.evolve(self.operation, context_id=self.context_id)
        return attrs.evolve(self.operation, context_id=context_ids[self.slot % len(context_ids)])


def _operations() -> st.SearchStrategy[_DrawnOperation]:
    echo = st.builds(lambda message_id: Operation(0, CEchoRQ(message_id)), st.integers(0, 0xFFFF))
    store = st.builds(
        lambda message_id, sop_class, instance, data_set: Operation(
            0, CStoreRQ(message_id, sop_class, instance), data_set
        ),
        st.integers(0, 0xFFFF),
        st.sampled_from(_SOP_CLASSES),
        ul.uids(),
        st.binary(max_size=3000),
    )
    other = st.builds(
        lambda message_id, field, with_data: Operation(
            0,
            OtherCommand(field, message_id, VERIFICATION, with_data),
            b"\x08\x00\x52\x00" if with_data else None,
        ),
        st.integers(0, 0xFFFF),
        st.sampled_from([0x0010, 0x0020, 0x0021, 0x0FFF, 0x0130, 0x8001, 0x8030]),
        st.booleans(),
    )
    return st.builds(
        _DrawnOperation,
        st.one_of(echo, store, other),
        st.integers(0, 7),
        st.one_of(st.none(), st.none(), st.none(), st.integers(0, 255)),
    )


def _plausible_requests() -> st.SearchStrategy[AAssociateRQ]:
    context = st.builds(
        PresentationContextRQ,
        context_id=st.integers(0, 127).map(lambda n: 2 * n + 1),
        abstract_syntax=st.sampled_from(_SOP_CLASSES),
        transfer_syntaxes=st.lists(st.sampled_from(_TRANSFER_SYNTAXES), min_size=1, max_size=3).map(
            tuple
        ),
    )
    return st.builds(
        AAssociateRQ,
        called_ae_title=ul.ae_titles(),
        calling_ae_title=ul.ae_titles(),
        presentation_contexts=st.lists(
            context, min_size=1, max_size=4, unique_by=lambda c: c.context_id
        ).map(tuple),
        user_information=ul.user_informations(request=True),
        application_context_name=st.just(APPLICATION_CONTEXT_NAME),
    )


# Built once: a strategy made inside a draw is validated again on every draw, which costs
# more than the draw itself.
_REQUESTS: Final = st.one_of(_plausible_requests(), _plausible_requests(), ul.a_associate_rqs())
_OPERATION_LISTS: Final = st.lists(_operations(), max_size=3)
_FRAGMENTS: Final = st.one_of(st.just(16378), st.integers(1, 16378))
_ENDINGS: Final = st.sampled_from(["release", "abort", "none"])
_RANDOMS: Final = st.randoms(use_true_random=False)
_EXTRA_PDUS: Final = ul.encoded_pdus()
_DAMAGE_COUNTS: Final = st.integers(0, 2)
_ROLLS: Final = st.integers(0, 9)


@st.composite
def conversations(draw: st.DrawFn) -> FuzzInput:
    """A requestor's conversation, most often plausible, a PDU or two damaged now and then,
    cut into chunks as TCP might deliver it, with the odd pause."""
    request = draw(_REQUESTS)
    context_ids = [context.context_id for context in request.presentation_contexts]
    operations = [drawn.on(context_ids) for drawn in draw(_OPERATION_LISTS)]
    pdus = conversation(request, operations, fragment=draw(_FRAGMENTS), ending=draw(_ENDINGS))
    rng = draw(_RANDOMS)
    labels = []
    for _ in range(draw(_DAMAGE_COUNTS)):
        index = rng.randrange(len(pdus))
        if not pdus[index]:  # truncated to nothing by an earlier mutation
            continue
        mutation = ul.mutate(pdus[index], rng)
        pdus[index] = mutation.data
        labels.append(mutation.kind.value)
    if draw(_ROLLS) == 0:
        pdus.insert(rng.randint(0, len(pdus)), draw(_EXTRA_PDUS))
        labels.append("insert-pdu")
    steps = chunk(b"".join(pdus), rng)
    if draw(_ROLLS) == 0:
        steps.insert(rng.randint(0, len(steps)), Wait(rng.choice(WAITS)))
        labels.append("wait")
    return FuzzInput(tuple(steps), "generated" + "".join(f"+{label}" for label in labels))


def chunk(stream: bytes, rng: random.Random) -> list[Step]:
    """``stream`` as TCP may deliver it: whole (half the time), one byte at a time (if
    short), or cut at up to 32 random points."""
    roll = rng.random()
    if roll < 0.5 or len(stream) < 2:
        return [stream] if stream else []
    if roll < 0.6 and len(stream) <= 4096:
        return [stream[i : i + 1] for i in range(len(stream))]
    cuts = sorted({rng.randrange(1, len(stream)) for _ in range(rng.randint(1, 32))})
    return [stream[a:b] for a, b in itertools.pairwise([0, *cuts, len(stream)])]


# --- mutation mode (random.Random, no hypothesis) --------------------------------------------

_SESSION_OPERATIONS: Final = (
    "mutate-pdu",
    "mutate-pdu",
    "mutate-pdu",
    "drop-pdu",
    "duplicate-pdu",
    "swap-pdus",
    "insert-pdu",
    "truncate-stream",
    "wait",
)


class Mutator:
    """Damages seed conversations: 1 to 4 operations per input, PDU-level (the mutation
    engine of :mod:`oxidicom.testing.strategies`) or conversation-level."""

    def __init__(self, seeds: Sequence[tuple[str, list[bytes]]], rng: random.Random) -> None:
        if not seeds:
            raise ValueError("no seed conversations")
        self._seeds = seeds
        self._rng = rng

    def next(self) -> FuzzInput:
        rng = self._rng
        _, original = rng.choice(self._seeds)
        pdus = list(original)
        labels: list[str] = []
        waits: list[tuple[int, float]] = []
        for _ in range(1 + min(3, int(rng.expovariate(1.0)))):
            operation = rng.choice(_SESSION_OPERATIONS)
            if not pdus:
                break
            index = rng.randrange(len(pdus))
            if operation == "mutate-pdu" and pdus[index]:
                mutation = ul.mutate(pdus[index], rng)
                pdus[index] = mutation.data
                operation = mutation.kind.value
            elif operation == "drop-pdu":
                del pdus[index]
            elif operation == "duplicate-pdu":
                pdus.insert(index, pdus[index])
            elif operation == "swap-pdus" and len(pdus) > 1:
                other = rng.randrange(len(pdus))
                pdus[index], pdus[other] = pdus[other], pdus[index]
            elif operation == "insert-pdu":
                _, donor = rng.choice(self._seeds)
                pdus.insert(index, rng.choice(donor))
            elif operation == "truncate-stream":
                del pdus[index + 1 :]
                pdus[index] = pdus[index][: rng.randrange(len(pdus[index]) + 1)]
            elif operation == "wait":
                waits.append((index, rng.choice(WAITS)))
            labels.append(operation)
        steps = chunk(b"".join(pdus), rng)
        for index, seconds in sorted(waits, reverse=True):
            steps.insert(min(index, len(steps)), Wait(seconds))
        return FuzzInput(tuple(steps), "+".join(labels))
