"""pynetdicom as a test peer: a scripted SCU and a recording storage SCP.

Unlike the DCMTK tools, pynetdicom lets a test choose every negotiation detail
(exact presentation contexts, role selection, user identity, release vs abort)
and see every outcome (per-context results, per-instance statuses, what an SCU
proposed). Files are sent byte for byte: the data set that follows the file
meta information goes on the wire as stored, so it must travel in the file's
own transfer syntax and the receiver can be checked for exact preservation.

pynetdicom logs through the ``pynetdicom`` logger, which has no level of its
own; under pytest only WARNING and above are captured, and shown only for
failing tests. Do not call ``pynetdicom.debug_logger()`` in shared code.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from io import BytesIO
from pathlib import Path
from typing import Any, Literal, TypeAlias

import attrs
import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_file_meta_info
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE, _config, build_context, build_role, evt
from pynetdicom._globals import ALL_TRANSFER_SYNTAXES, DEFAULT_MAX_LENGTH
from pynetdicom.association import Association
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.pdu_primitives import A_ASSOCIATE, UserIdentityNegotiation
from pynetdicom.presentation import AllStoragePresentationContexts, PresentationContext

from .ports import LOOPBACK, PeerError, attach_log

VERIFICATION = "1.2.840.10008.1.1"
STORAGE_SOP_CLASSES: tuple[str, ...] = tuple(
    str(cx.abstract_syntax) for cx in AllStoragePresentationContexts
)
TRANSFER_SYNTAXES: tuple[str, ...] = tuple(ALL_TRANSFER_SYNTAXES)
"""Every transfer syntax pynetdicom knows: uncompressed, deflated, JPEG family, RLE, video."""

Item: TypeAlias = Path | Dataset
"""Something to C-STORE: a DICOM file (sent byte for byte) or a data set with file meta."""


# --- negotiation values -----------------------------------------------------------------


@attrs.frozen
class Context:
    """A presentation context to propose: one abstract syntax, transfer syntaxes in order."""

    abstract_syntax: str
    transfer_syntaxes: tuple[str, ...]


@attrs.frozen
class RoleSelection:
    """An SCP/SCU Role Selection item, as proposed by the requestor."""

    sop_class_uid: str
    scu_role: bool
    scp_role: bool


@attrs.frozen
class UserIdentity:
    """A User Identity Negotiation item (PS3.7 D.3.3.7).

    `kind`: 1 username, 2 username + passcode, 3 Kerberos, 4 SAML, 5 JWT.
    """

    kind: int
    primary: bytes
    secondary: bytes = b""
    positive_response_requested: bool = False


@attrs.frozen
class ContextResult:
    """The acceptor's answer to one proposed context (`result` 0 means accepted)."""

    context_id: int
    abstract_syntax: str
    result: int
    transfer_syntax: str | None
    as_scu: bool
    as_scp: bool

    @property
    def accepted(self) -> bool:
        return self.result == 0


def _context_results(contexts: Sequence[PresentationContext]) -> tuple[ContextResult, ...]:
    results = (
        ContextResult(
            context_id=int(cx.context_id or 0),
            abstract_syntax=str(cx.abstract_syntax),
            result=int(cx.result if cx.result is not None else -1),
            transfer_syntax=str(cx.transfer_syntax[0]) if cx.result == 0 else None,
            as_scu=bool(cx.as_scu),
            as_scp=bool(cx.as_scp),
        )
        for cx in contexts
    )
    return tuple(sorted(results, key=lambda r: r.context_id))


# --- SCU --------------------------------------------------------------------------------


@attrs.frozen
class StoreOutcome:
    """One C-STORE attempt. `status` is None when no response came (see `error`)."""

    sop_instance_uid: str
    transfer_syntax: str
    status: int | None
    error: str | None = None


Ending = Literal["rejected", "failed", "released", "aborted", "peer-aborted"]
"""How an SCU association ended: rejected by the acceptor (A-ASSOCIATE-RJ); failed
to establish (no connection, no accepted context, timeout); released or aborted
by us as asked; or ended by the peer (A-ABORT or closed connection) before that."""


@attrs.frozen
class ScuResult:
    """Everything `run_scu` observed, from negotiation to the end of the association."""

    ending: Ending
    rejection: tuple[int, int, int] | None
    """(result, source, reason/diagnostic) of an A-ASSOCIATE-RJ."""
    contexts: tuple[ContextResult, ...]
    echo_status: int | None
    stores: tuple[StoreOutcome, ...]
    user_identity_response: bytes | None

    @property
    def established(self) -> bool:
        return self.ending in ("released", "aborted", "peer-aborted")

    @property
    def statuses(self) -> tuple[int | None, ...]:
        return tuple(s.status for s in self.stores)


def identify(item: Item) -> tuple[str, str, str]:
    """(SOP class UID, SOP instance UID, transfer syntax UID) of a file or data set."""
    if isinstance(item, Path):
        meta = read_file_meta_info(item)
        return (
            str(meta.MediaStorageSOPClassUID),
            str(meta.MediaStorageSOPInstanceUID),
            str(meta.TransferSyntaxUID),
        )
    return str(item.SOPClassUID), str(item.SOPInstanceUID), str(item.file_meta.TransferSyntaxUID)


def contexts_for(items: Sequence[Item], *, echo: bool = False) -> tuple[Context, ...]:
    """One context per distinct (SOP class, transfer syntax) of `items`, offering only that
    syntax, so each item travels unconverted; plus Verification if `echo`."""
    contexts: dict[tuple[str, str], Context] = {}
    if echo:
        contexts[VERIFICATION, ""] = Context(
            VERIFICATION, (str(ImplicitVRLittleEndian), str(ExplicitVRLittleEndian))
        )
    for item in items:
        sop_class, _, transfer_syntax = identify(item)
        contexts.setdefault((sop_class, transfer_syntax), Context(sop_class, (transfer_syntax,)))
    return tuple(contexts.values())


class _SendFilesAsStored(threading.local):
    """Stands in for pynetdicom's process-wide ``STORE_SEND_CHUNKED_DATASET`` switch.

    With the switch on, ``send_c_store(path)`` sends the file's encoded data set
    untouched instead of decoding and re-encoding it. ``send_c_store`` reads the
    switch once, in the calling thread, so a per-thread value turns it on for
    our sends only, without serialising concurrent SCUs behind a lock.
    """

    active = False

    def __bool__(self) -> bool:
        return self.active


_send_files_as_stored = _SendFilesAsStored()


def run_scu(
    host: str,
    port: int,
    *,
    items: Sequence[Item] = (),
    echo: bool = False,
    contexts: Sequence[Context] | None = None,
    calling_aet: str = "PYNETDICOM",
    called_aet: str = "ANY-SCP",
    roles: Sequence[RoleSelection] = (),
    user_identity: UserIdentity | None = None,
    max_pdu: int = DEFAULT_MAX_LENGTH,
    end: Literal["release", "abort"] = "release",
    timeout: float = 30.0,
) -> ScuResult:
    """Associate, optionally C-ECHO, C-STORE each item in order, then release or abort.

    `contexts` defaults to :func:`contexts_for` the items. A file item is sent
    as its stored bytes and needs an accepted context with exactly its
    transfer syntax; a data set item is encoded in its file meta's syntax. An
    item with no usable context gets ``status=None`` and an `error`; sending
    stops once the association is gone. Never raises for peer behaviour: the
    result says what happened.
    """
    ae = AE(ae_title=calling_aet)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout
    ae.connection_timeout = timeout
    requested = [
        build_context(c.abstract_syntax, list(c.transfer_syntaxes))
        for c in (contexts if contexts is not None else contexts_for(items, echo=echo))
    ]
    ext_neg: list[Any] = [build_role(r.sop_class_uid, r.scu_role, r.scp_role) for r in roles]
    if user_identity is not None:
        ext_neg.append(_identity_item(user_identity))
    assoc = ae.associate(
        host,
        port,
        contexts=requested,
        ae_title=called_aet,
        max_pdu=max_pdu,
        ext_neg=ext_neg or None,
    )
    negotiated = _context_results([*assoc.accepted_contexts, *assoc.rejected_contexts])
    if not _alive(assoc):
        rejection = _rejection(assoc) if assoc.is_rejected else None
        return ScuResult(
            ending="rejected" if rejection else "failed",
            rejection=rejection,
            contexts=negotiated,
            echo_status=None,
            stores=(),
            user_identity_response=None,
        )
    identity_response = _identity_response(assoc)
    echo_status = _status(assoc.send_c_echo()) if echo else None
    stores: list[StoreOutcome] = []
    for message_id, item in enumerate(items, start=1):
        if not _alive(assoc):
            break
        stores.append(_store(assoc, item, message_id))
    ending: Ending
    if not _alive(assoc):
        ending = "peer-aborted"
    elif end == "abort":
        assoc.abort()
        ending = "aborted"
    else:
        assoc.release()
        ending = "released" if assoc.is_released else "peer-aborted"
    return ScuResult(
        ending=ending,
        rejection=None,
        contexts=negotiated,
        echo_status=echo_status,
        stores=tuple(stores),
        user_identity_response=identity_response,
    )


def _alive(assoc: Association) -> bool:
    # A function, not the attribute: the association changes it behind mypy's back.
    return bool(assoc.is_established)


def _association_request(assoc: Association) -> A_ASSOCIATE:
    request = assoc.requestor.primitive
    assert request is not None, "pynetdicom reports an association without its request"
    return request


def _store(assoc: Association, item: Item, message_id: int) -> StoreOutcome:
    _, instance, transfer_syntax = identify(item)
    try:
        if isinstance(item, Path):
            _config.STORE_SEND_CHUNKED_DATASET = _send_files_as_stored  # type: ignore[assignment]
            _send_files_as_stored.active = True
            try:
                response = assoc.send_c_store(item, msg_id=message_id)
            finally:
                _send_files_as_stored.active = False
        else:
            response = assoc.send_c_store(item, msg_id=message_id)
    except ValueError as exc:  # no accepted context for this SOP class / syntax
        return StoreOutcome(instance, transfer_syntax, None, str(exc))
    status = _status(response)
    error = None if status is not None else "no response (timeout or association lost)"
    return StoreOutcome(instance, transfer_syntax, status, error)


def _status(response: Dataset) -> int | None:
    return int(response.Status) if "Status" in response else None


def _identity_item(identity: UserIdentity) -> UserIdentityNegotiation:
    item = UserIdentityNegotiation()
    item.user_identity_type = identity.kind
    item.primary_field = identity.primary
    if identity.secondary:
        item.secondary_field = identity.secondary
    item.positive_response_requested = identity.positive_response_requested
    return item


def _identity_value(item: UserIdentityNegotiation | None) -> UserIdentity | None:
    if item is None:
        return None
    return UserIdentity(
        kind=int(item.user_identity_type or 0),
        primary=bytes(item.primary_field or b""),
        secondary=bytes(item.secondary_field or b""),
        positive_response_requested=bool(item.positive_response_requested),
    )


def _identity_response(assoc: Association) -> bytes | None:
    item = assoc.acceptor.user_identity
    response = getattr(item, "server_response", None)
    return bytes(response) if response is not None else None


def _rejection(assoc: Association) -> tuple[int, int, int]:
    rsp = assoc.acceptor.primitive
    assert rsp is not None, "pynetdicom reports a rejection without the A-ASSOCIATE-RJ"
    result, source, reason = rsp.result, rsp.result_source, rsp.diagnostic
    assert result is not None
    assert source is not None
    assert reason is not None
    return result, source, reason


# --- storage SCP ------------------------------------------------------------------------


@attrs.frozen
class ReceivedInstance:
    """A C-STORE data set exactly as it came off the wire, with its context."""

    calling_aet: str
    called_aet: str
    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax: str
    data: bytes
    """The encoded data set (no file meta), in `transfer_syntax`; deflated if that is."""

    def file_bytes(self) -> bytes:
        """A DICOM Part 10 file holding `data` unchanged."""
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = UID(self.sop_class_uid)
        meta.MediaStorageSOPInstanceUID = UID(self.sop_instance_uid)
        meta.TransferSyntaxUID = UID(self.transfer_syntax)
        buffer = DicomBytesIO()
        buffer.write(b"\0" * 128 + b"DICM")
        write_file_meta_info(buffer, meta)
        return bytes(buffer.getvalue()) + self.data

    def dataset(self) -> Dataset:
        """The data set decoded by pydicom (pixel data stays encoded)."""
        return dcmread(BytesIO(self.file_bytes()))


@attrs.frozen
class AssociationRecord:
    """What an SCU proposed to the SCP and how the association ended."""

    calling_aet: str
    called_aet: str
    max_pdu: int | None
    requested: tuple[Context, ...]
    contexts: tuple[ContextResult, ...]
    roles: tuple[RoleSelection, ...]
    user_identity: UserIdentity | None
    ending: Literal["released", "aborted", "closed"] | None = None
    """None while the association is open; "closed" if the connection dropped."""


StatusPolicy: TypeAlias = int | Callable[[ReceivedInstance], int]


class StorageScp:
    """A pynetdicom storage SCP on a loopback port that records what it receives.

    Accepts every storage SOP class and Verification with the configured
    transfer syntaxes; answers each C-STORE with `store_status` (a constant or
    a function of the instance). Accepts any user identity, and answers it with
    `identity_response` when the SCU asks for a response.
    """

    def __init__(
        self,
        *,
        ae_title: str = "PYNETDICOM",
        transfer_syntaxes: Sequence[str] = TRANSFER_SYNTAXES,
        store_status: StatusPolicy = 0x0000,
        max_pdu: int = DEFAULT_MAX_LENGTH,
        identity_response: bytes | None = None,
    ) -> None:
        self.ae_title = ae_title
        self.host = LOOPBACK
        self._store_status = store_status
        self._changed = threading.Condition()
        self._instances: list[ReceivedInstance] = []
        self._associations: dict[Association, AssociationRecord] = {}
        ae = AE(ae_title=ae_title)
        ae.maximum_pdu_size = max_pdu
        for sop_class in (VERIFICATION, *STORAGE_SOP_CLASSES):
            ae.add_supported_context(sop_class, list(transfer_syntaxes))
        handlers: list[Any] = [
            (evt.EVT_C_STORE, self._on_store),
            (evt.EVT_C_ECHO, lambda _event: 0x0000),
            (evt.EVT_ACCEPTED, self._on_accepted),
            (evt.EVT_RELEASED, lambda event: self._on_end(event, "released")),
            (evt.EVT_ABORTED, lambda event: self._on_end(event, "aborted")),
            (evt.EVT_CONN_CLOSE, lambda event: self._on_end(event, "closed")),
            (evt.EVT_USER_ID, lambda *_: (True, identity_response)),
        ]
        # Port 0: the kernel picks a free port while we hold it, so there is no race.
        server = ae.start_server((self.host, 0), block=False, evt_handlers=handlers)
        assert server is not None
        self._server = server
        self.port: int = server.server_address[1]

    def stop(self) -> None:
        """Abort open associations and close the listening socket."""
        self._server.shutdown()

    def received(self) -> list[ReceivedInstance]:
        with self._changed:
            return list(self._instances)

    def associations(self) -> list[AssociationRecord]:
        """Associations in the order they were accepted."""
        with self._changed:
            return list(self._associations.values())

    def wait_for_instances(self, count: int, timeout: float = 10.0) -> list[ReceivedInstance]:
        """Wait until `count` instances have arrived; return all received so far."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._instances) >= count, timeout):
                raise PeerError(
                    f"{self.ae_title} received {len(self._instances)} of {count} "
                    f"instances in {timeout:g} s"
                )
            return list(self._instances)

    def wait_for_associations(self, count: int, timeout: float = 10.0) -> list[AssociationRecord]:
        """Wait until `count` associations have *ended*; return all records."""

        def ended() -> int:
            return sum(1 for r in self._associations.values() if r.ending is not None)

        with self._changed:
            if not self._changed.wait_for(lambda: ended() >= count, timeout):
                raise PeerError(
                    f"{self.ae_title} saw {ended()} of {count} associations end in {timeout:g} s"
                )
            return list(self._associations.values())

    def describe(self) -> str:
        """A summary for failing test reports."""
        lines = [f"--- pynetdicom SCP {self.ae_title} on {self.host}:{self.port} ---"]
        lines += [
            f"association from {r.calling_aet} to {r.called_aet}: {len(r.requested)} contexts "
            f"proposed, {sum(c.accepted for c in r.contexts)} accepted, ended: {r.ending}"
            for r in self.associations()
        ]
        lines += [
            f"instance {i.sop_instance_uid} in {i.transfer_syntax} from {i.calling_aet}"
            for i in self.received()
        ]
        return "\n".join(lines)

    # pynetdicom calls these from its association threads.

    def _on_accepted(self, event: evt.Event) -> None:
        assoc = event.assoc
        request = _association_request(assoc)
        record = AssociationRecord(
            calling_aet=str(request.calling_ae_title).strip(),
            called_aet=str(request.called_ae_title).strip(),
            max_pdu=assoc.requestor.maximum_length,
            requested=tuple(
                Context(str(cx.abstract_syntax), tuple(str(ts) for ts in cx.transfer_syntax))
                for cx in sorted(
                    assoc.requestor.requested_contexts, key=lambda c: c.context_id or 0
                )
            ),
            contexts=_context_results([*assoc.accepted_contexts, *assoc.rejected_contexts]),
            roles=tuple(
                RoleSelection(str(uid), bool(item.scu_role), bool(item.scp_role))
                for uid, item in assoc.requestor.role_selection.items()
            ),
            user_identity=_identity_value(assoc.requestor.user_identity),
        )
        with self._changed:
            self._associations[assoc] = record
            self._changed.notify_all()

    def _on_end(self, event: evt.Event, how: Literal["released", "aborted", "closed"]) -> None:
        with self._changed:
            record = self._associations.get(event.assoc)
            if record is not None and record.ending is None:
                self._associations[event.assoc] = attrs.evolve(record, ending=how)
                self._changed.notify_all()

    def _on_store(self, event: evt.Event) -> int:
        association = _association_request(event.assoc)
        store = event.request
        assert isinstance(store, C_STORE)
        assert store.DataSet is not None
        instance = ReceivedInstance(
            calling_aet=str(association.calling_ae_title).strip(),
            called_aet=str(association.called_ae_title).strip(),
            sop_class_uid=str(store.AffectedSOPClassUID),
            sop_instance_uid=str(store.AffectedSOPInstanceUID),
            transfer_syntax=str(event.context.transfer_syntax),
            data=bytes(store.DataSet.getvalue()),
        )
        with self._changed:
            self._instances.append(instance)
            self._changed.notify_all()
        policy = self._store_status
        return policy(instance) if callable(policy) else policy


@contextmanager
def storage_scp(
    *,
    ae_title: str = "PYNETDICOM",
    transfer_syntaxes: Sequence[str] = TRANSFER_SYNTAXES,
    store_status: StatusPolicy = 0x0000,
    max_pdu: int = DEFAULT_MAX_LENGTH,
    identity_response: bytes | None = None,
) -> Iterator[StorageScp]:
    """Run a :class:`StorageScp` for the duration of the block."""
    scp = StorageScp(
        ae_title=ae_title,
        transfer_syntaxes=transfer_syntaxes,
        store_status=store_status,
        max_pdu=max_pdu,
        identity_response=identity_response,
    )
    try:
        yield scp
    except BaseException as exc:
        exc.add_note(scp.describe())
        raise
    finally:
        scp.stop()


@pytest.fixture
def pynetdicom_scp(request: pytest.FixtureRequest) -> Iterator[StorageScp]:
    """A recording storage SCP accepting everything (see :class:`StorageScp`).

    For other options use :func:`storage_scp` in the test.
    """
    with storage_scp() as scp:
        attach_log(request, scp.describe)
        yield scp
