"""The two ways a DICOM Upper Layer conversation can go wrong.

Modelled on h11: a :class:`LocalProtocolError` is *our* mistake (the application asked
for something the state machine does not allow, or tried to send an invalid PDU) and is
raised to the caller; a :class:`RemoteProtocolError` is the *peer's* mistake (malformed
or unexpected bytes). The association never lets a remote error escape: it turns it into
Evt19 and the A-ABORT that PS3.8 Table 9-10 prescribes, carrying the reason below.
"""

from __future__ import annotations

from oxidicom.ul.constants import AbortReason


class ProtocolError(Exception):
    """Base class of the Upper Layer's protocol errors."""


class LocalProtocolError(ProtocolError):
    """The local application violated PS3.8 (a bug in the caller, not in the peer)."""


class RemoteProtocolError(ProtocolError):
    """The peer sent bytes that violate PS3.8.

    ``reason`` is what we put in the A-ABORT we answer with (PS3.8 Table 9-26).
    """

    def __init__(
        self, message: str, reason: AbortReason = AbortReason.INVALID_PDU_PARAMETER_VALUE
    ) -> None:
        super().__init__(message)
        self.reason = reason
