"""The acceptor's answer: rejects of the whole association, and context by context."""

from __future__ import annotations

import attrs
import pytest
from hypothesis import given, settings

from oxidicom.testing import strategies as ul
from oxidicom.ul.actions import Role
from oxidicom.ul.association import Association
from oxidicom.ul.constants import ContextResult, describe_reject
from oxidicom.ul.events import AssociationRequested
from oxidicom.ul.fsm import State
from oxidicom.ul.items import (
    AsyncOperationsWindow,
    PresentationContextAC,
    PresentationContextRQ,
    RoleSelection,
    UserIdentityAC,
    UserIdentityRQ,
    UserInformation,
)
from oxidicom.ul.negotiation import AcceptorPolicy, negotiate
from oxidicom.ul.pdus import AAssociateAC, AAssociateRJ, AAssociateRQ, decode_pdu, encode_pdu

VERIFICATION = "1.2.840.10008.1.1"
CT = "1.2.840.10008.5.1.4.1.1.2"
MR = "1.2.840.10008.5.1.4.1.1.4"
IMPLICIT = "1.2.840.10008.1.2"
EXPLICIT = "1.2.840.10008.1.2.1"
JPEG = "1.2.840.10008.1.2.4.50"

POLICY = AcceptorPolicy(
    ae_title="OXIDICOM",
    transfer_syntaxes={IMPLICIT, EXPLICIT},
    abstract_syntaxes={VERIFICATION, CT},
    implementation_class_uid="1.2.826.0.1.3680043.10.1341",
    implementation_version_name="OXIDICOM_4",
    max_length_received=32768,
)


def request(
    *contexts: PresentationContextRQ,
    user_information: UserInformation | None = None,
    called_ae_title: str = "OXIDICOM",
    calling_ae_title: str = "STORESCU",
    application_context_name: str = "1.2.840.10008.3.1.1.1",
    protocol_version: int = 1,
) -> AAssociateRQ:
    return AAssociateRQ(
        called_ae_title,
        calling_ae_title,
        contexts,
        user_information or UserInformation(16384, implementation_class_uid="1.2.3"),
        application_context_name,
        protocol_version,
    )


def accepted(answer: AAssociateAC | AAssociateRJ) -> AAssociateAC:
    assert isinstance(answer, AAssociateAC)
    return answer


def test_an_accept_echoes_the_titles_and_announces_us() -> None:
    answer = accepted(negotiate(request(PresentationContextRQ(1, CT, (IMPLICIT,))), POLICY))
    assert (answer.called_ae_title, answer.calling_ae_title) == ("OXIDICOM", "STORESCU")
    assert answer.user_information == UserInformation(
        maximum_length=32768,
        implementation_class_uid="1.2.826.0.1.3680043.10.1341",
        implementation_version_name="OXIDICOM_4",
    )


def test_another_application_context_is_rejected_1_1_2() -> None:
    answer = negotiate(request(application_context_name="1.2.3.4"), POLICY)
    assert answer == AAssociateRJ(1, 1, 2)
    assert describe_reject(1, 1, 2) == (
        "rejected-permanent by service-user: application-context-name-not-supported (1,1,2)"
    )


def test_a_missing_application_context_is_rejected_1_1_2() -> None:
    body = encode_pdu(request())[6:]
    without = body[:68] + body[68 + 4 + 21 :]  # drop the application context item
    decoded = decode_pdu(1, without)
    assert isinstance(decoded, AAssociateRQ)
    assert negotiate(decoded, POLICY) == AAssociateRJ(1, 1, 2)


def test_an_unknown_calling_ae_title_is_rejected_1_1_3() -> None:
    policy = attrs.evolve(POLICY, calling_ae_titles={"PACS"})
    assert negotiate(request(), policy) == AAssociateRJ(1, 1, 3)
    assert isinstance(negotiate(request(calling_ae_title="PACS"), policy), AAssociateAC)


def test_a_wrong_called_ae_title_is_rejected_1_1_7_only_if_checked() -> None:
    wrong = request(called_ae_title="SOMEONE")
    assert isinstance(negotiate(wrong, POLICY), AAssociateAC)
    assert negotiate(wrong, attrs.evolve(POLICY, check_called_ae_title=True)) == AAssociateRJ(
        1, 1, 7
    )


def test_a_protocol_version_without_bit_0_is_rejected_1_2_2_by_the_provider() -> None:
    """AE-6: the service-provider rejects it before the user hears of it."""
    association = Association(Role.ACCEPTOR)
    association.connection_made(0.0)
    association.receive_data(encode_pdu(request(protocol_version=0x0002)), 1.0)
    assert association.next_event() is None
    assert association.state is State.STA13
    (sent,) = association.data_to_send()
    assert decode_pdu(sent[0], bytes(sent[6:])) == AAssociateRJ(1, 2, 2)


def test_a_protocol_version_with_bit_0_among_others_is_accepted() -> None:
    association = Association(Role.ACCEPTOR)
    association.connection_made(0.0)
    association.receive_data(encode_pdu(request(protocol_version=0x0003)), 1.0)
    assert isinstance(association.next_event(), AssociationRequested)


def test_the_first_proposed_transfer_syntax_we_support_is_chosen() -> None:
    answer = accepted(
        negotiate(
            request(
                PresentationContextRQ(1, CT, (JPEG, EXPLICIT, IMPLICIT)),
                PresentationContextRQ(3, CT, (IMPLICIT, EXPLICIT)),
            ),
            POLICY,
        )
    )
    assert answer.presentation_contexts == (
        PresentationContextAC(1, ContextResult.ACCEPTANCE, EXPLICIT),
        PresentationContextAC(3, ContextResult.ACCEPTANCE, IMPLICIT),
    )


def test_an_abstract_syntax_not_supported_is_refused_3() -> None:
    answer = accepted(negotiate(request(PresentationContextRQ(5, MR, (IMPLICIT,))), POLICY))
    assert answer.presentation_contexts == (
        PresentationContextAC(5, ContextResult.ABSTRACT_SYNTAX_NOT_SUPPORTED, ""),
    )


def test_transfer_syntaxes_not_supported_are_refused_4() -> None:
    answer = accepted(negotiate(request(PresentationContextRQ(5, CT, (JPEG,))), POLICY))
    assert answer.presentation_contexts == (
        PresentationContextAC(5, ContextResult.TRANSFER_SYNTAXES_NOT_SUPPORTED, ""),
    )


def test_a_context_without_transfer_syntaxes_is_refused_4() -> None:
    answer = accepted(negotiate(request(PresentationContextRQ(5, CT, ())), POLICY))
    assert answer.presentation_contexts[0].result == ContextResult.TRANSFER_SYNTAXES_NOT_SUPPORTED


def test_a_promiscuous_policy_accepts_any_abstract_syntax() -> None:
    policy = attrs.evolve(POLICY, abstract_syntaxes=None)
    answer = accepted(
        negotiate(request(PresentationContextRQ(1, "1.2.3.4.5", (IMPLICIT,))), policy)
    )
    assert answer.presentation_contexts == (PresentationContextAC(1, 0, IMPLICIT),)


def test_even_and_repeated_context_ids_are_refused_without_failing_the_rest() -> None:
    answer = accepted(
        negotiate(
            request(
                PresentationContextRQ(2, CT, (IMPLICIT,)),
                PresentationContextRQ(3, CT, (IMPLICIT,)),
                PresentationContextRQ(3, VERIFICATION, (EXPLICIT,)),
            ),
            POLICY,
        )
    )
    assert answer.presentation_contexts == (
        PresentationContextAC(2, ContextResult.NO_REASON, ""),
        PresentationContextAC(3, ContextResult.ACCEPTANCE, IMPLICIT),
    )


def test_role_selection_lets_the_requestor_be_scu_never_scp() -> None:
    roles = (RoleSelection(CT, 1, 1), RoleSelection(MR, 0, 1), RoleSelection(VERIFICATION, 1, 0))
    answer = accepted(
        negotiate(request(user_information=UserInformation(role_selections=roles)), POLICY)
    )
    assert answer.user_information.role_selections == (
        RoleSelection(CT, 1, 0),
        RoleSelection(MR, 0, 0),
        RoleSelection(VERIFICATION, 1, 0),
    )


def test_the_async_window_is_answered_one_operation_at_a_time() -> None:
    proposed = UserInformation(async_operations_window=AsyncOperationsWindow(8, 4))
    answer = accepted(negotiate(request(user_information=proposed), POLICY))
    assert answer.user_information.async_operations_window == AsyncOperationsWindow(1, 1)
    silent = accepted(negotiate(request(), POLICY))
    assert silent.user_information.async_operations_window is None


@pytest.mark.parametrize(("positive", "answered"), [(True, UserIdentityAC(b"")), (False, None)])
def test_user_identity_gets_a_response_only_when_asked(
    positive: bool, answered: UserIdentityAC | None
) -> None:
    identity = UserIdentityRQ(2, positive, b"alice", b"secret")
    answer = accepted(
        negotiate(request(user_information=UserInformation(user_identity_rq=identity)), POLICY)
    )
    assert answer.user_information.user_identity_ac == answered


@settings(max_examples=60, deadline=None)
@given(ul.a_associate_rqs())
def test_any_request_gets_an_answer_the_association_accepts(proposal: AAssociateRQ) -> None:
    """Whatever was proposed, the answer is a reject, or an accept the state machine takes:
    one answer per distinct context ID, each accepted one with a proposed transfer syntax."""
    policy = attrs.evolve(POLICY, abstract_syntaxes=None, transfer_syntaxes=set(ul.WELL_KNOWN_UIDS))
    association = Association(Role.ACCEPTOR)
    association.connection_made(0.0)
    association.receive_data(encode_pdu(proposal), 1.0)
    event = association.next_event()
    if not proposal.protocol_version & 1:
        assert event is None
        return
    assert isinstance(event, AssociationRequested)
    answer = negotiate(event.request, policy)
    if isinstance(answer, AAssociateRJ):
        association.reject(answer, 2.0)
        assert association.state is State.STA13
        return
    association.accept(answer, 2.0)
    ids = [context.context_id for context in proposal.presentation_contexts]
    assert [context.context_id for context in answer.presentation_contexts] == list(
        dict.fromkeys(ids)
    )
    assert set(association.contexts) == {
        c.context_id for c in answer.presentation_contexts if c.result == ContextResult.ACCEPTANCE
    }
