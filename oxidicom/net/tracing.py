"""One OpenTelemetry span per association (TCP connection), with the API only.

The span is named ``association`` (kind SERVER) and carries ``association_ulid``,
``client.address``, ``client.port`` and, once the A-ASSOCIATE-RQ is read, ``aet`` (the
calling AE title); a failed association ends with status error and its reason (CUBE
contract §6). Exporting is configured elsewhere (:mod:`oxidicom.telemetry`); without a
configured provider these calls cost next to nothing.
"""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer

TRACER_NAME = "oxidicom"


class AssociationSpan:
    """Started when the connection is accepted, ended when it is closed."""

    __slots__ = ("_failed", "_span")

    def __init__(
        self,
        association_ulid: str,
        client_address: str,
        client_port: int,
        *,
        tracer: Tracer | None = None,
    ) -> None:
        tracer = tracer or trace.get_tracer(TRACER_NAME)
        self._span: Span = tracer.start_span(
            "association",
            kind=SpanKind.SERVER,
            attributes={
                "association_ulid": association_ulid,
                "client.address": client_address,
                "client.port": client_port,
            },
        )
        self._failed = False

    def set_calling_aet(self, aet: str) -> None:
        self._span.set_attribute("aet", aet)

    def fail(self, message: str) -> None:
        """Mark the association failed (aborted, rejected, timed out...) with ``message``."""
        self._failed = True
        self._span.set_status(Status(StatusCode.ERROR, message))

    def end(self) -> None:
        if not self._failed:
            self._span.set_status(Status(StatusCode.OK))
        self._span.end()
