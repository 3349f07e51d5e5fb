"""OpenTelemetry export: where the association spans of :mod:`oxidicom.net.tracing` go.

Spans are exported over OTLP/gRPC when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set.
The exporter is the optional extra ``oxidicom[otlp]``: without it, oxidicom
says so once and runs without traces rather than refusing to start.
"""

import logging

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

from oxidicom.settings import Settings, TelemetrySettings

__all__ = ["configure_tracing", "shutdown_tracing"]

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
    global one, which the server's association spans use.
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
