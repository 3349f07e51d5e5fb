"""OpenTelemetry traces: one span per association, as the Rust oxidicom exports them.

Each association (TCP connection) gets a span named ``association`` with the
attributes ``association_ulid``, ``client.address``, ``client.port`` and, once
the A-ASSOCIATE-RQ is read, ``aet`` (the calling AE title). A failed association
has status error with its message (contract section 6).

Spans are exported over OTLP/gRPC when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set.
The exporter is the optional extra ``oxidicom[otlp]``: without it, oxidicom
says so once and runs without traces rather than refusing to start.
"""

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import attrs
from opentelemetry import trace
from opentelemetry.sdk.resources import (
    TELEMETRY_SDK_LANGUAGE,
    TELEMETRY_SDK_NAME,
    TELEMETRY_SDK_VERSION,
    Resource,
)
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.version import __version__ as sdk_version
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer

from oxidicom.settings import Settings, TelemetrySettings

__all__ = [
    "TRACER_NAME",
    "AssociationSpan",
    "association_span",
    "configure_tracing",
    "shutdown_tracing",
]

TRACER_NAME = "oxidicom"

_log = logging.getLogger(__name__)


def configure_tracing(
    settings: Settings | TelemetrySettings,
    *,
    exporter: SpanExporter | None = None,
    set_global: bool = True,
) -> TracerProvider | None:
    """Export spans to ``exporter``, by default OTLP/gRPC to ``OTEL_EXPORTER_OTLP_ENDPOINT``.

    Returns None, and spans cost next to nothing, when there is nowhere to export
    to. With ``set_global`` (as the CLI does), the provider becomes OpenTelemetry's
    global one, which :func:`association_span` uses unless given a tracer.
    Pass the result to :func:`shutdown_tracing` before exiting.
    """
    telemetry = settings.telemetry if isinstance(settings, Settings) else settings
    if exporter is None:
        if telemetry.otlp_endpoint is None:
            return None
        exporter = _otlp_exporter(telemetry.otlp_endpoint)
        if exporter is None:
            return None
    resource = Resource(
        {
            TELEMETRY_SDK_LANGUAGE: "python",
            TELEMETRY_SDK_NAME: "opentelemetry",
            TELEMETRY_SDK_VERSION: sdk_version,
            **telemetry.resource(),
        }
    )
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    if set_global:
        trace.set_tracer_provider(provider)
    return provider


def _otlp_exporter(endpoint: str) -> SpanExporter | None:
    try:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (  # noqa: PLC0415
            OTLPSpanExporter,
        )
    except ImportError:
        _log.warning(
            "OTEL_EXPORTER_OTLP_ENDPOINT is set, but the OTLP exporter is not installed "
            "(pip install 'oxidicom[otlp]'): traces will not be exported"
        )
        return None
    return OTLPSpanExporter(endpoint=endpoint)


def shutdown_tracing(provider: TracerProvider | None) -> None:
    """Export the spans still buffered, then stop exporting."""
    if provider is not None:
        provider.shutdown()


@attrs.define
class AssociationSpan:
    """The span of one association, for what is learnt while it runs."""

    span: Span
    failed: bool = False

    def set_calling_aet(self, aet: str) -> None:
        self.span.set_attribute("aet", aet)

    def fail(self, message: str) -> None:
        """Mark the association failed (aborted, rejected, ...) with ``message``."""
        self.failed = True
        self.span.set_status(Status(StatusCode.ERROR, message))


@contextmanager
def association_span(
    association_ulid: str,
    client_address: str,
    client_port: int,
    *,
    tracer: Tracer | None = None,
) -> Iterator[AssociationSpan]:
    """The span of one association, current for the duration of the block.

    An exception escaping the block fails the span with the exception's message
    (and is re-raised); otherwise the status is OK unless
    :meth:`AssociationSpan.fail` was called.
    """
    tracer = trace.get_tracer(TRACER_NAME) if tracer is None else tracer
    attributes: dict[str, str | int] = {
        "association_ulid": association_ulid,
        "client.address": client_address,
        "client.port": client_port,
    }
    with tracer.start_as_current_span(
        "association",
        kind=SpanKind.SERVER,
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        association = AssociationSpan(span)
        try:
            yield association
        except GeneratorExit:
            raise
        except BaseException as e:
            span.record_exception(e)
            association.fail(str(e) or type(e).__name__)
            raise
        if not association.failed:
            span.set_status(Status(StatusCode.OK))
