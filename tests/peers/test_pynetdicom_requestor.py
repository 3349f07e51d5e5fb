"""pynetdicom as the requestor against oxidicom's asyncio server, with extended negotiation.

The server runs in this process with the receiver's own acceptor policy
(:func:`oxidicom.receiver.acceptor_policy`) and an application that records what the
server tells it; pynetdicom runs in a thread and reports what came back in the
A-ASSOCIATE-AC.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import pytest
from pynetdicom import AE, build_role
from pynetdicom.pdu_primitives import (
    AsynchronousOperationsWindowNegotiation,
    UserIdentityNegotiation,
)

from oxidicom.dimse.messages import CEchoRQ, CStoreRQ
from oxidicom.net.handlers import (
    AssociationContext,
    AssociationEnd,
    Outcome,
    Peer,
    StoreResult,
)
from oxidicom.net.server import DicomServer, ServerConfig
from oxidicom.receiver import acceptor_policy
from oxidicom.settings import Settings
from oxidicom.ul.association import AcceptedContext
from oxidicom.ul.items import UserIdentityRQ
from oxidicom.ul.negotiation import negotiate
from oxidicom.ul.pdus import AAssociateAC, AAssociateRJ, AAssociateRQ
from tests.peers.ports import LOOPBACK
from tests.peers.pynetdicom_peer import VERIFICATION

pytestmark = pytest.mark.interop

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"


class RecordingHandler:
    def __init__(self, app: RecordingApp) -> None:
        self.app = app

    def on_echo(self, request: CEchoRQ) -> int:
        self.app.echoes += 1
        return 0x0000

    def on_store(self, request: CStoreRQ, context: AcceptedContext) -> StoreResult:
        return StoreResult(0x0110, "this application stores nothing")

    def on_end(self, end: AssociationEnd) -> None:
        self.app.ends.append(end)
        self.app.ended.set()


class RecordingApp:
    """The receiver's negotiation; remembers each accepted association and how it ended."""

    def __init__(self, files_root: Path) -> None:
        settings = Settings.from_env(
            {"OXIDICOM_FILES_ROOT": str(files_root), "OXIDICOM_AMQP_ADDRESS": "amqp://unused"}
        )
        self.policy = acceptor_policy(settings)
        self.opened: list[AssociationContext] = []
        self.ends: list[AssociationEnd] = []
        self.ended = asyncio.Event()
        self.echoes = 0

    def connection_allowed(self, peer: Peer) -> bool:
        return True

    def negotiate(self, request: AAssociateRQ, peer: Peer) -> AAssociateAC | AAssociateRJ:
        return negotiate(request, self.policy)

    def open(self, association: AssociationContext) -> RecordingHandler:
        self.opened.append(association)
        return RecordingHandler(self)


@attrs.frozen
class PynetdicomView:
    """What the pynetdicom requestor saw of the association."""

    established: bool
    roles: dict[str, tuple[bool, bool]]
    """The A-ASSOCIATE-AC's role selection items: SOP class -> (SCU role, SCP role)."""
    async_windows: tuple[tuple[int, int], ...]
    """The A-ASSOCIATE-AC's asynchronous operations window items (invoked, performed)."""
    identity_responses: tuple[bytes, ...]
    """The server response of each User Identity item in the A-ASSOCIATE-AC."""
    verification_roles: tuple[bool, bool] | None
    """How pynetdicom may use the accepted Verification context: (as SCU, as SCP)."""
    echo_status: int | None
    released: bool


def associate_with_extended_negotiation(port: int, ext_neg: Sequence[Any]) -> PynetdicomView:
    ae = AE(ae_title="PYNEGOTIATE")
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = ae.connection_timeout = 10
    ae.add_requested_context(VERIFICATION)
    ae.add_requested_context(CT_IMAGE_STORAGE)
    assoc = ae.associate(LOOPBACK, port, ae_title="OXIDICOM", ext_neg=list(ext_neg))
    if not assoc.is_established:
        return PynetdicomView(False, {}, (), (), None, None, False)
    items = assoc.acceptor.user_information
    verification = [cx for cx in assoc.accepted_contexts if cx.abstract_syntax == VERIFICATION]
    view = PynetdicomView(
        established=True,
        roles={
            str(uid): (bool(item.scu_role), bool(item.scp_role))
            for uid, item in assoc.acceptor.role_selection.items()
        },
        async_windows=tuple(
            (item.maximum_number_operations_invoked, item.maximum_number_operations_performed)
            for item in items
            if isinstance(item, AsynchronousOperationsWindowNegotiation)
        ),
        identity_responses=tuple(
            bytes(item.server_response or b"")
            for item in items
            if isinstance(item, UserIdentityNegotiation)
        ),
        verification_roles=(
            (bool(verification[0].as_scu), bool(verification[0].as_scp)) if verification else None
        ),
        echo_status=int(assoc.send_c_echo().get("Status", -1)),
        released=False,
    )
    assoc.release()
    return attrs.evolve(view, released=bool(assoc.is_released))


def username_and_password(username: bytes, password: bytes) -> UserIdentityNegotiation:
    item = UserIdentityNegotiation()
    item.user_identity_type = 2
    item.primary_field = username
    item.secondary_field = password
    item.positive_response_requested = True
    return item


def async_window(invoked: int, performed: int) -> AsynchronousOperationsWindowNegotiation:
    item = AsynchronousOperationsWindowNegotiation()
    item.maximum_number_operations_invoked = invoked
    item.maximum_number_operations_performed = performed
    return item


async def test_roles_user_identity_and_async_window_are_answered_and_reported(
    tmp_path: Path,
) -> None:
    app = RecordingApp(tmp_path)
    ext_neg = [
        build_role(VERIFICATION, scu_role=True, scp_role=True),
        build_role(CT_IMAGE_STORAGE, scu_role=False, scp_role=True),
        username_and_password(b"alice", b"s3cret"),
        async_window(5, 3),
    ]

    async with DicomServer(app, ServerConfig(host=LOOPBACK, port=0)) as server:
        view = await asyncio.to_thread(associate_with_extended_negotiation, server.port, ext_neg)
        await asyncio.wait_for(app.ended.wait(), 10)

    assert view.established
    # We may be asked to act as SCU only: the requestor keeps the SCU role where it proposed
    # it, and is never accepted as an SCP (we invoke nothing on it).
    assert view.roles == {VERIFICATION: (True, False), CT_IMAGE_STORAGE: (False, False)}
    assert view.verification_roles == (True, False)
    # We perform one operation at a time, whatever the requestor offers.
    assert view.async_windows == ((1, 1),)
    # A positive response was requested: username + password gets an empty one (D.3.3.7.2).
    assert view.identity_responses == (b"",)
    assert (view.echo_status, view.released) == (0x0000, True)

    [context] = app.opened
    assert context.calling_ae_title == "PYNEGOTIATE"
    assert context.request.user_information.user_identity_rq == UserIdentityRQ(
        identity_type=2,
        positive_response_requested=True,
        primary_field=b"alice",
        secondary_field=b"s3cret",
    )
    assert app.echoes == 1
    [end] = app.ends
    assert end.outcome is Outcome.RELEASED
    assert end.stats.echoes == 1


async def test_without_extended_negotiation_the_ac_carries_none(tmp_path: Path) -> None:
    app = RecordingApp(tmp_path)

    async with DicomServer(app, ServerConfig(host=LOOPBACK, port=0)) as server:
        view = await asyncio.to_thread(associate_with_extended_negotiation, server.port, [])
        await asyncio.wait_for(app.ended.wait(), 10)

    assert view.established
    assert (view.roles, view.async_windows, view.identity_responses) == ({}, (), ())
    assert (view.echo_status, view.released) == (0x0000, True)
    [context] = app.opened
    assert context.request.user_information.user_identity_rq is None
