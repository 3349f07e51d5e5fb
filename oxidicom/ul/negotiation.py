"""The acceptor's answer to an A-ASSOCIATE-RQ: which contexts, which transfer syntaxes.

:func:`negotiate` is a pure function of the request and an :class:`AcceptorPolicy`; an
application that wants other rules (calling AE allow lists, connection limits...) checks the
request first and rejects with :func:`reject`, or builds its own A-ASSOCIATE-AC.
"""

from __future__ import annotations

from collections.abc import Collection

import attrs

from oxidicom.ul.constants import (
    APPLICATION_CONTEXT_NAME,
    REASON_USER_APPLICATION_CONTEXT,
    REASON_USER_CALLED_AE,
    REASON_USER_CALLING_AE,
    ContextResult,
    RejectResult,
    RejectSource,
)
from oxidicom.ul.items import (
    AsyncOperationsWindow,
    PresentationContextAC,
    PresentationContextRQ,
    RoleSelection,
    UserIdentityAC,
    UserInformation,
)
from oxidicom.ul.pdus import AAssociateAC, AAssociateRJ, AAssociateRQ


@attrs.frozen
class AcceptorPolicy:
    """What an acceptor supports.

    ``abstract_syntaxes=None`` accepts any abstract syntax (promiscuous). For each context the
    transfer syntax chosen is the *first one the requestor proposed* that is in
    ``transfer_syntaxes``, so data arrives the way the sender holds it.
    """

    ae_title: str
    transfer_syntaxes: Collection[str]
    abstract_syntaxes: Collection[str] | None
    implementation_class_uid: str
    max_length_received: int = 16384
    implementation_version_name: str | None = None
    check_called_ae_title: bool = False
    calling_ae_titles: Collection[str] | None = None
    """Accepted calling AE titles; ``None`` accepts any."""


def reject(result: int, source: int, reason: int) -> AAssociateRJ:
    return AAssociateRJ(result, source, reason)


def check_request(request: AAssociateRQ, policy: AcceptorPolicy) -> AAssociateRJ | None:
    """The service-user's reasons to reject the whole association, if any (§9.3.4)."""
    if request.application_context_name != APPLICATION_CONTEXT_NAME:
        return reject(
            RejectResult.REJECTED_PERMANENT,
            RejectSource.SERVICE_USER,
            REASON_USER_APPLICATION_CONTEXT,
        )
    if policy.calling_ae_titles is not None and (
        request.calling_ae_title not in policy.calling_ae_titles
    ):
        return reject(
            RejectResult.REJECTED_PERMANENT, RejectSource.SERVICE_USER, REASON_USER_CALLING_AE
        )
    if policy.check_called_ae_title and request.called_ae_title != policy.ae_title:
        return reject(
            RejectResult.REJECTED_PERMANENT, RejectSource.SERVICE_USER, REASON_USER_CALLED_AE
        )
    return None


def answer_context(context: PresentationContextRQ, policy: AcceptorPolicy) -> PresentationContextAC:
    """Accept with the first proposed transfer syntax we support, or say why not."""
    if policy.abstract_syntaxes is not None and (
        context.abstract_syntax not in policy.abstract_syntaxes
    ):
        return PresentationContextAC(
            context.context_id, ContextResult.ABSTRACT_SYNTAX_NOT_SUPPORTED, ""
        )
    for transfer_syntax in context.transfer_syntaxes:
        if transfer_syntax in policy.transfer_syntaxes:
            return PresentationContextAC(
                context.context_id, ContextResult.ACCEPTANCE, transfer_syntax
            )
    return PresentationContextAC(
        context.context_id, ContextResult.TRANSFER_SYNTAXES_NOT_SUPPORTED, ""
    )


def answer_contexts(
    request: AAssociateRQ, policy: AcceptorPolicy
) -> tuple[PresentationContextAC, ...]:
    """One answer per proposed context ID. IDs must be odd (§9.3.2.2): an even ID, or a
    repeated one, is refused (no-reason) rather than failing the whole association."""
    answers: list[PresentationContextAC] = []
    seen: set[int] = set()
    for context in request.presentation_contexts:
        if context.context_id in seen:
            continue
        seen.add(context.context_id)
        if context.context_id % 2 == 0:
            answers.append(PresentationContextAC(context.context_id, ContextResult.NO_REASON, ""))
        else:
            answers.append(answer_context(context, policy))
    return tuple(answers)


def answer_roles(request: AAssociateRQ) -> tuple[RoleSelection, ...]:
    """SCP/SCU role selection (PS3.7 D.3.3.4): the requestor may be SCU, as always; we never
    accept it as SCP, because we never invoke operations on it."""
    return tuple(
        RoleSelection(role.sop_class_uid, scu_role=role.scu_role, scp_role=0)
        for role in request.user_information.role_selections
    )


def negotiate(request: AAssociateRQ, policy: AcceptorPolicy) -> AAssociateAC | AAssociateRJ:
    """The whole answer: a reject, or an accept with every proposed context answered."""
    rejection = check_request(request, policy)
    if rejection is not None:
        return rejection
    requested = request.user_information
    identity = requested.user_identity_rq
    user_information = UserInformation(
        maximum_length=policy.max_length_received,
        implementation_class_uid=policy.implementation_class_uid,
        implementation_version_name=policy.implementation_version_name,
        # We perform one operation at a time; answering 1/1 tells the requestor so (D.3.3.3).
        async_operations_window=(
            AsyncOperationsWindow(1, 1) if requested.async_operations_window else None
        ),
        role_selections=answer_roles(request),
        # Identity is accepted as given (reported to the application, not verified here).
        user_identity_ac=(
            UserIdentityAC(b"")
            if identity is not None and identity.positive_response_requested
            else None
        ),
    )
    return AAssociateAC(
        called_ae_title=request.called_ae_title,
        calling_ae_title=request.calling_ae_title,
        presentation_contexts=answer_contexts(request, policy),
        user_information=user_information,
    )
