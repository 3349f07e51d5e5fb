"""The system under fuzz: a promiscuous sans-IO acceptor, and the properties it must keep.

:class:`Acceptor` is what an SCP built on oxidicom does with one connection: the PS3.8
:class:`~oxidicom.ul.association.Association` (acceptor role), :func:`negotiate` with a
policy that accepts every abstract and transfer syntax, and the DIMSE
:class:`~oxidicom.dimse.reader.MessageReader`, answering C-ECHO and C-STORE (success) and
anything else with "unrecognized operation". Bytes go in, bytes come out, and every step is
checked:

* nothing raises (a remote error must become an A-ABORT, never an exception);
* every event is one the acceptor can get in the state it is in, and the last is
  ``ConnectionClosed``, after which nothing happens;
* the framer never holds more than its caps;
* what we send is a well-formed sequence of PDUs (AC or RJ first; after RJ, A-ABORT or
  A-RELEASE-RP nothing but the A-ABORT of AA-7; P-DATA-TF only after AC, on accepted
  contexts, within the peer's maximum length), and every protocol error we report is
  answered by an A-ABORT carrying the same reason;
* when the input ends (the peer closes), the association is over.

A broken property raises :class:`BrokenPropertyError`.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Iterator

import attrs

from oxidicom.dimse import status as dimse_status
from oxidicom.dimse.messages import (
    CEchoRQ,
    CEchoRSP,
    CStoreRQ,
    CStoreRSP,
    Message,
    OtherCommand,
    unrecognized_operation_response,
)
from oxidicom.dimse.reader import (
    CommandReceived,
    CommandUndecodable,
    MessageReader,
    ProtocolViolation,
)
from oxidicom.dimse.writer import send_message
from oxidicom.ul.actions import Role
from oxidicom.ul.association import Association
from oxidicom.ul.constants import PDU_HEADER_LENGTH, AbortSource
from oxidicom.ul.errors import RemoteProtocolError
from oxidicom.ul.events import (
    AbortCause,
    Aborted,
    AssociationRequested,
    ConnectionClosed,
    PDataChunk,
    PDataRun,
    ReleaseRequested,
    UserEvent,
)
from oxidicom.ul.framer import ASSOCIATE_LENGTH_CAP
from oxidicom.ul.fsm import State
from oxidicom.ul.negotiation import AcceptorPolicy, negotiate
from oxidicom.ul.pdus import (
    AAbort,
    AAssociateAC,
    AAssociateRJ,
    AReleaseRP,
    PDataTF,
    Pdu,
    decode_pdu,
)


class BrokenPropertyError(AssertionError):
    """A property of the acceptor broke: a bug in oxidicom (or in this harness)."""


class Outcome(enum.Enum):
    """How one input's association ended, from what we sent and received."""

    RELEASED = "released"
    REJECTED = "rejected"
    ABORTED = "aborted"
    """We sent A-ABORT (a protocol error, a DIMSE violation, or the idle timeout)."""
    PEER_ABORTED = "peer-aborted"
    CONNECTION_LOST = "connection-lost"
    """Established, then the input ended without release or abort."""
    NO_ASSOCIATION = "no-association"
    """The input ended (or ARTIM expired) before any A-ASSOCIATE-RQ was answered."""


@attrs.frozen
class Wait:
    """An input step: this many seconds pass with nothing received (timers may fire)."""

    seconds: float


Step = bytes | Wait


@attrs.frozen
class Result:
    outcome: Outcome
    responses: int
    """DIMSE responses sent."""
    sent: tuple[Pdu, ...]


class _AnyUid(Collection[str]):
    """Contains every UID: the promiscuous transfer syntax list."""

    def __contains__(self, item: object) -> bool:
        return isinstance(item, str)

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


PROMISCUOUS_POLICY = AcceptorPolicy(
    ae_title="FUZZ-SCP",
    transfer_syntaxes=_AnyUid(),
    abstract_syntaxes=None,
    implementation_class_uid="1.2.826.0.1.3680043.10.1341.99",
    implementation_version_name="OXIDICOM-FUZZ",
    max_length_received=16384,
)

_RECEIVING = frozenset({State.STA6, State.STA7})
_CAN_SEND = frozenset({State.STA6, State.STA8})
_TICK = 0.001
"""Seconds that pass per received chunk: far from any timer unless a :class:`Wait` says."""


class Acceptor:
    """One connection on the acceptor side, fed by :meth:`feed`, :meth:`wait`, :meth:`close`."""

    def __init__(
        self,
        *,
        policy: AcceptorPolicy = PROMISCUOUS_POLICY,
        artim_timeout: float = 30.0,
        idle_timeout: float | None = 60.0,
        strict_max_length: bool = False,
        coalesce_data: bool = True,
    ) -> None:
        self.association = Association(
            Role.ACCEPTOR,
            artim_timeout=artim_timeout,
            idle_timeout=idle_timeout,
            strict_max_length=strict_max_length,
            coalesce_data=coalesce_data,  # as the receiver runs it
        )
        self.policy = policy
        self.reader = MessageReader()
        self.now = 0.0
        self.output = bytearray()
        self.transport_closed = False
        self.finished = False
        self.peer_aborted = False
        self.responses = 0
        self._pending: tuple[int, Message] | None = None
        """The response to send once the data set being received is complete."""
        self._reported_aborts: list[int] = []
        """Reasons of the protocol errors indicated: each needs an A-ABORT on the wire."""
        self.association.connection_made(self.now)
        self._pump()

    # --- input ---------------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        """Bytes from the peer (dropped, as by a closed socket, once we closed)."""
        if self.transport_closed or not data:
            return
        self.now += _TICK
        self.association.receive_data(data, self.now)
        self._pump()

    def wait(self, seconds: float) -> None:
        """Let time pass, firing each timer that falls due meanwhile."""
        target = self.now + seconds
        for _ in range(8):
            deadline = self.association.get_timer()
            if deadline is None or deadline > target:
                break
            self.now = max(self.now, deadline)
            self.association.handle_timer(self.now)
            self._pump()
        else:
            raise BrokenPropertyError("a timer keeps falling due without ending")
        self.now = target

    def close(self) -> Result:
        """The peer closes the connection: the association must be over after this."""
        if not self.transport_closed:
            self.now += _TICK
            self.association.receive_data(b"", self.now)
            self._pump()
        if not self.finished or self.association.state is not State.STA1:
            raise BrokenPropertyError(
                f"after the transport closed: state {self.association.state.value}, "
                f"ConnectionClosed {'seen' if self.finished else 'never indicated'}"
            )
        return self._result()

    def run(self, steps: Collection[Step]) -> Result:
        for step in steps:
            if isinstance(step, Wait):
                self.wait(step.seconds)
            else:
                self.feed(step)
        return self.close()

    # --- events --------------------------------------------------------------------------

    def _pump(self) -> None:
        association = self.association
        while (event := association.next_event()) is not None:
            if self.finished:
                raise BrokenPropertyError(f"{event!r} after ConnectionClosed")
            self._event(event)
        if association.buffered > ASSOCIATE_LENGTH_CAP:
            raise BrokenPropertyError(f"the framer holds {association.buffered} bytes")
        parts = association.data_to_send()
        if parts and self.transport_closed:
            raise BrokenPropertyError("bytes to send after the transport was closed")
        for part in parts:
            self.output += part
        if association.close_requested and not self.transport_closed:
            if not self.finished:
                raise BrokenPropertyError("transport close requested before the association ended")
            self.transport_closed = True

    def _event(self, event: UserEvent) -> None:
        association = self.association
        state = association.state
        if isinstance(event, PDataChunk | PDataRun):
            if state not in _RECEIVING:
                raise BrokenPropertyError(f"P-DATA indication in {state.value}")
            if event.context_id not in association.contexts:
                raise BrokenPropertyError(f"P-DATA on context {event.context_id}, not accepted")
            if isinstance(event, PDataChunk):
                self._chunk(event)
            else:
                self._run(event)
        elif type(event) is AssociationRequested:
            if state is not State.STA3:
                raise BrokenPropertyError(f"A-ASSOCIATE indication in {state.value}")
            answer = negotiate(event.request, self.policy)
            if isinstance(answer, AAssociateRJ):
                association.reject(answer, self.now)
            else:
                association.accept(answer, self.now)
        elif type(event) is ReleaseRequested:
            if state is not State.STA8 or event.collision:
                raise BrokenPropertyError(f"{event!r} in {state.value}: we never asked to release")
            association.release_response(self.now)
        elif type(event) is Aborted:
            self._aborted(event, state)
        elif type(event) is ConnectionClosed:
            if state is not State.STA1:
                raise BrokenPropertyError(f"ConnectionClosed in {state.value}")
            self.finished = True
        else:
            raise BrokenPropertyError(f"{event!r}: an acceptor that never releases cannot get it")

    def _aborted(self, event: Aborted, state: State) -> None:
        expected = {
            AbortCause.PEER_ABORT: State.STA1,
            AbortCause.CONNECTION_LOST: State.STA1,
            AbortCause.PROTOCOL_ERROR: State.STA13,
            AbortCause.TIMEOUT: State.STA13,
        }[event.cause]
        if state is not expected:
            raise BrokenPropertyError(f"{event!r} in {state.value}")
        if event.cause is AbortCause.PEER_ABORT:
            self.peer_aborted = True
        elif event.cause is AbortCause.PROTOCOL_ERROR:
            self._reported_aborts.append(event.reason)

    # --- DIMSE ---------------------------------------------------------------------------

    def _run(self, run: PDataRun) -> None:
        result = self.reader.feed_run(run)
        if result is not run:
            self._abort()  # a ProtocolViolation
        elif run.is_last and self._pending is not None:
            context_id, response = self._pending
            self._pending = None
            self._send(context_id, response)

    def _chunk(self, chunk: PDataChunk) -> None:
        result = self.reader.feed(chunk)
        if result is None:
            return
        if result is chunk:
            if chunk.is_last and self._pending is not None:
                context_id, response = self._pending
                self._pending = None
                self._send(context_id, response)
            return
        if type(result) is PDataChunk:
            raise BrokenPropertyError("the reader passed on a data chunk other than the one fed")
        if type(result) is ProtocolViolation:
            self._abort()
        elif type(result) is CommandUndecodable:
            error = result.error
            field, message_id = error.command_field, error.message_id
            if field is None or message_id is None or field & 0x8000:
                self._abort()
                return
            response = attrs.evolve(
                unrecognized_operation_response(OtherCommand(field, message_id, None, False)),
                status=dimse_status.CANNOT_UNDERSTAND,
            )
            self._answer(result.context_id, response, later=bool(error.has_data_set))
        elif type(result) is CommandReceived:
            if result.context_id not in self.association.contexts:
                raise BrokenPropertyError(f"command on context {result.context_id}, not accepted")
            self._command(result.context_id, result.message, result.has_data_set)

    def _command(self, context_id: int, message: Message, with_data: bool) -> None:
        if type(message) is CEchoRQ:
            self._answer(context_id, CEchoRSP(message.message_id), later=with_data)
        elif type(message) is CStoreRQ:
            response = CStoreRSP(
                message.message_id,
                message.affected_sop_class_uid,
                message.affected_sop_instance_uid,
            )
            self._answer(context_id, response, later=with_data)
        elif type(message) is OtherCommand and message.is_request:
            self._answer(context_id, unrecognized_operation_response(message), later=with_data)
        else:
            self._abort()  # a response, from the requestor: nothing we asked for

    def _answer(self, context_id: int, response: Message, *, later: bool) -> None:
        if later:
            self._pending = (context_id, response)
        else:
            self._send(context_id, response)

    def _send(self, context_id: int, response: Message) -> None:
        if self.association.state in _CAN_SEND:
            send_message(self.association, context_id, response, self.now)
            self.responses += 1

    def _abort(self) -> None:
        self._pending = None
        self.association.abort(self.now)

    # --- what we sent --------------------------------------------------------------------

    def _result(self) -> Result:
        sent = self._sent_pdus()
        kinds = {type(pdu) for pdu in sent}
        if AAssociateRJ in kinds:
            outcome = Outcome.REJECTED
        elif AAbort in kinds:
            outcome = Outcome.ABORTED
        elif self.peer_aborted:
            outcome = Outcome.PEER_ABORTED
        elif AReleaseRP in kinds:
            outcome = Outcome.RELEASED
        elif AAssociateAC in kinds:
            outcome = Outcome.CONNECTION_LOST
        else:
            outcome = Outcome.NO_ASSOCIATION
        return Result(outcome, self.responses, tuple(sent))

    def _sent_pdus(self) -> list[Pdu]:
        """Decode and check everything we sent (see the module docstring)."""
        out = bytes(self.output)
        sent: list[Pdu] = []
        pos = 0
        peer_max = self.association.peer_max_length
        while pos < len(out):
            if len(out) - pos < PDU_HEADER_LENGTH:
                raise BrokenPropertyError(f"we sent a truncated PDU header at byte {pos}")
            length = int.from_bytes(out[pos + 2 : pos + 6], "big")
            body = out[pos + 6 : pos + 6 + length]
            if len(body) < length:
                raise BrokenPropertyError(f"we sent a truncated PDU at byte {pos}")
            try:
                pdu = decode_pdu(out[pos], body)
            except RemoteProtocolError as error:
                raise BrokenPropertyError(
                    f"we sent an invalid PDU at byte {pos}: {error}"
                ) from None
            if isinstance(pdu, PDataTF) and peer_max > PDU_HEADER_LENGTH and length > peer_max:
                raise BrokenPropertyError(f"P-DATA-TF of {length} bytes > peer maximum {peer_max}")
            sent.append(pdu)
            pos += PDU_HEADER_LENGTH + length
        self._check_sequence(sent)
        return sent

    def _check_sequence(self, sent: list[Pdu]) -> None:
        accepted = False
        ended: Pdu | None = None
        for index, pdu in enumerate(sent):
            # Once the association is over (Sta13) the only PDU left to send is the A-ABORT
            # of AA-7, answering an A-ASSOCIATE-RQ or an invalid PDU.
            if ended is not None and not isinstance(pdu, AAbort):
                raise BrokenPropertyError(f"{pdu!r} sent after {ended!r}")
            if isinstance(pdu, AAssociateRJ | AAbort | AReleaseRP):
                ended = ended or pdu
            if isinstance(pdu, AAssociateAC):
                if index:
                    raise BrokenPropertyError("A-ASSOCIATE-AC sent but not first")
                accepted = True
            elif isinstance(pdu, AAssociateRJ) and index:
                raise BrokenPropertyError("A-ASSOCIATE-RJ sent but not first")
            elif isinstance(pdu, PDataTF):
                if not accepted:
                    raise BrokenPropertyError("P-DATA-TF sent before A-ASSOCIATE-AC")
                for pdv in pdu.values:
                    if pdv.context_id not in self.association.contexts:
                        raise BrokenPropertyError(f"PDV sent on context {pdv.context_id}")
        aborts = [pdu for pdu in sent if isinstance(pdu, AAbort)]
        for reason in self._reported_aborts:
            if not any(
                abort.source == AbortSource.SERVICE_PROVIDER and abort.reason == reason
                for abort in aborts
            ):
                raise BrokenPropertyError(f"protocol error (reason {reason}) without its A-ABORT")
