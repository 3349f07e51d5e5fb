"""One OpenTelemetry span per association, exported over OTLP/gRPC (contract §6).

The receiver runs as in production (``python -m oxidicom`` with
``OTEL_EXPORTER_OTLP_ENDPOINT``) and exports to a real OTLP trace service in this
process. Each association must give exactly one span with ``association_ulid``,
``client.address``, ``client.port`` and ``aet``; a failed one has status error with a
message.
"""

from __future__ import annotations

import queue
import re
import socket
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc  # type: ignore[import-untyped]
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.trace.v1 import trace_pb2
from pynetdicom import AE
from pynetdicom.association import Association

from tests.peers.oxidicom_receiver import ReceiverFactory

VERIFICATION = "1.2.840.10008.1.1"
ULID = re.compile(r"[0-9A-HJKMNP-TV-Z]{26}")


class TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    """An OTLP trace receiver that keeps every span exported to it."""

    def __init__(self) -> None:
        self.spans: queue.Queue[trace_pb2.Span] = queue.Queue()

    def Export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: Any
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        for resource_spans in request.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    self.spans.put(span)
        return trace_service_pb2.ExportTraceServiceResponse()

    def received(self) -> list[trace_pb2.Span]:
        spans = []
        while not self.spans.empty():
            spans.append(self.spans.get_nowait())
        return spans


@pytest.fixture
def trace_service() -> Iterator[tuple[TraceService, str]]:
    service = TraceService()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(service, server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield service, f"http://127.0.0.1:{port}"
    server.stop(grace=None)


def _attributes(span: trace_pb2.Span) -> dict[str, Any]:
    values = {}
    for attribute in span.attributes:
        kind = attribute.value.WhichOneof("value")
        values[attribute.key] = getattr(attribute.value, kind)
    return values


def _associate(port: int, aet: str) -> tuple[Association, int]:
    """An association proposing Verification, and its local (client) port."""
    ae = AE(ae_title=aet)
    ae.add_requested_context(VERIFICATION)
    association = ae.associate("127.0.0.1", port, ae_title="ChRIS")
    assert association.is_established
    sock = association.dul.socket.socket if association.dul.socket else None
    assert sock is not None
    return association, int(sock.getsockname()[1])


def test_one_span_per_association(
    own_receiver: ReceiverFactory, trace_service: tuple[TraceService, str]
) -> None:
    service, endpoint = trace_service
    rx = own_receiver(
        OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
        OTEL_BSP_SCHEDULE_DELAY="50",
        OXIDICOM_CHECK_CALLED_AET="true",
    )

    released, released_port = _associate(rx.port, "SPANRELEASE")
    assert released.send_c_echo().Status == 0x0000
    released.release()
    aborted, aborted_port = _associate(rx.port, "SPANABORT")
    aborted.abort()
    rejected = AE(ae_title="SPANREJECT")
    rejected.add_requested_context(VERIFICATION)
    assert rejected.associate("127.0.0.1", rx.port, ae_title="NOT-CHRIS").is_rejected
    with socket.create_connection(("127.0.0.1", rx.port)) as junk:
        junk.sendall(b"GET / HTTP/1.1\r\n\r\n")  # not DICOM: aborted before any AE title
        junk.recv(100)
    # Stopping the receiver exports every span still buffered.
    assert rx.stop() == 0

    received = service.received()
    assert sorted(str(_attributes(span).get("aet")) for span in received) == [
        "None",
        "SPANABORT",
        "SPANREJECT",
        "SPANRELEASE",
    ]
    spans = {_attributes(span).get("aet"): span for span in received}
    for aet in ("SPANREJECT", None):  # failed before any association was established
        status = spans[aet].status
        assert status.code == trace_pb2.Status.STATUS_CODE_ERROR, aet
        assert status.message, aet
    for aet, client_port in (("SPANRELEASE", released_port), ("SPANABORT", aborted_port)):
        span = spans[aet]
        attributes = _attributes(span)
        assert attributes == {
            "association_ulid": attributes["association_ulid"],
            "client.address": "127.0.0.1",
            "client.port": client_port,
            "aet": aet,
        }
        ulid = attributes["association_ulid"]
        assert ULID.fullmatch(ulid), ulid
        assert f"association={ulid} calling_aet={aet}" in rx.log()
        assert span.name == "association"
    assert spans["SPANRELEASE"].status.code != trace_pb2.Status.STATUS_CODE_ERROR
    failed = spans["SPANABORT"].status
    assert failed.code == trace_pb2.Status.STATUS_CODE_ERROR
    assert failed.message, "a failed association's span says why"
