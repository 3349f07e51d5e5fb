import logging
import os
import queue
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc  # type: ignore[import-untyped]
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from oxidicom.net.tracing import AssociationSpan
from oxidicom.settings import Settings
from oxidicom.telemetry import configure_tracing, shutdown_tracing

REQUIRED = {"OXIDICOM_AMQP_ADDRESS": "amqp://localhost:5672", "OXIDICOM_FILES_ROOT": "/data"}
ULID = "01ARZ3NDEKTSV4RRFFQ69G5FAV"


def settings(**env: str) -> Settings:
    return Settings.from_env({**REQUIRED, **env})


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> Iterator[TracerProvider]:
    provider = configure_tracing(
        settings(OTEL_RESOURCE_ATTRIBUTES="deployment.environment=test"),
        exporter=exporter,
        set_global=False,
    )
    assert provider is not None
    yield provider
    shutdown_tracing(provider)


def finished(provider: TracerProvider, exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    assert provider.force_flush()
    return list(exporter.get_finished_spans())


def test_one_span_per_association(provider: TracerProvider, exporter: InMemorySpanExporter) -> None:
    span = AssociationSpan(ULID, "10.0.0.7", 40123, tracer=provider.get_tracer("t"))
    span.set_calling_aet("ORTHANC")
    span.end()
    [record] = finished(provider, exporter)
    assert record.name == "association"
    assert record.kind is SpanKind.SERVER
    assert dict(record.attributes or {}) == {
        "association_ulid": ULID,
        "client.address": "10.0.0.7",
        "client.port": 40123,
        "aet": "ORTHANC",
    }
    assert record.status.status_code is StatusCode.OK
    assert record.resource.attributes["service.name"] == "oxidicom"
    assert record.resource.attributes["deployment.environment"] == "test"
    assert record.resource.attributes["telemetry.sdk.language"] == "python"


def test_a_failed_association_fails_its_span(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    span = AssociationSpan(ULID, "10.0.0.7", 2, tracer=provider.get_tracer("t"))
    span.fail("A-ABORT received from the peer")
    span.end()
    [record] = finished(provider, exporter)
    assert record.status.status_code is StatusCode.ERROR
    assert record.status.description == "A-ABORT received from the peer"


def test_nothing_to_configure_without_endpoint() -> None:
    assert configure_tracing(settings(), set_global=False) is None


def test_missing_exporter_package_is_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # None in sys.modules makes the import fail, as when the extra is not installed.
    monkeypatch.setitem(sys.modules, "opentelemetry.exporter.otlp.proto.grpc.trace_exporter", None)
    s = settings(OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:4317")
    with caplog.at_level(logging.WARNING, logger="oxidicom"):
        assert configure_tracing(s, set_global=False) is None
    assert [r.getMessage() for r in caplog.records] == [
        "OTEL_EXPORTER_OTLP_ENDPOINT is set, but the OTLP exporter is not installed "
        "(pip install 'oxidicom[otlp]'): traces will not be exported"
    ]


# --- A real OTLP/gRPC receiver -------------------------------------------------------------------


class Collector(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self) -> None:
        self.requests: queue.Queue[trace_service_pb2.ExportTraceServiceRequest] = queue.Queue()

    def Export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: Any
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        self.requests.put(request)
        return trace_service_pb2.ExportTraceServiceResponse()

    def spans(self) -> tuple[dict[str, Any], list[Any]]:
        """The resource attributes and spans of the next export request."""
        request = self.requests.get(timeout=30)
        [resource_spans] = request.resource_spans
        resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
        return resource, [s for scope in resource_spans.scope_spans for s in scope.spans]


@pytest.fixture
def collector() -> Iterator[tuple[Collector, str]]:
    collector = Collector()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(collector, server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield collector, f"http://127.0.0.1:{port}"
    server.stop(grace=None)


def span_attributes(span: Any) -> dict[str, Any]:
    values = {}
    for attribute in span.attributes:
        kind = attribute.value.WhichOneof("value")
        values[attribute.key] = getattr(attribute.value, kind)
    return values


def test_otlp_export(collector: tuple[Collector, str]) -> None:
    receiver, endpoint = collector
    provider = configure_tracing(
        settings(OTEL_EXPORTER_OTLP_ENDPOINT=endpoint, OTEL_SERVICE_NAME="oxidicom-test"),
        set_global=False,
    )
    assert provider is not None
    span = AssociationSpan(ULID, "10.0.0.7", 40123, tracer=provider.get_tracer("t"))
    span.set_calling_aet("ORTHANC")
    span.end()
    shutdown_tracing(provider)
    resource, [exported] = receiver.spans()
    assert resource["service.name"] == "oxidicom-test"
    assert exported.name == "association"
    assert span_attributes(exported) == {
        "association_ulid": ULID,
        "client.address": "10.0.0.7",
        "client.port": 40123,
        "aet": "ORTHANC",
    }


def test_from_the_environment_to_the_collector(collector: tuple[Collector, str]) -> None:
    """The CLI's path: settings from the environment, the global tracer provider."""
    receiver, endpoint = collector
    program = textwrap.dedent(
        """
        from oxidicom.net.tracing import AssociationSpan
        from oxidicom.settings import Settings
        from oxidicom.telemetry import configure_tracing, shutdown_tracing

        provider = configure_tracing(Settings.from_env())
        span = AssociationSpan("01ARZ3NDEKTSV4RRFFQ69G5FAV", "::1", 5)
        span.set_calling_aet("PACS")
        span.fail("peer went away")
        span.end()
        shutdown_tracing(provider)
        """
    )
    env = {
        **os.environ,
        **REQUIRED,
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_RESOURCE_ATTRIBUTES": "service.name=oxidicom-env,k8s.pod.name=oxi-0",
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
    }
    env.pop("OTEL_SERVICE_NAME", None)
    subprocess.run([sys.executable, "-c", program], env=env, check=True, timeout=60)
    resource, [exported] = receiver.spans()
    assert resource["service.name"] == "oxidicom-env"
    assert resource["k8s.pod.name"] == "oxi-0"
    assert span_attributes(exported)["aet"] == "PACS"
    assert exported.status.code == exported.status.STATUS_CODE_ERROR
    assert exported.status.message == "peer went away"
