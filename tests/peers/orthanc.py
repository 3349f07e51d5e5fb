"""Orthanc as a test peer: a real PACS that pushes studies to a modality by C-STORE.

Each server runs with its own configuration, storage and ports (DICOM and
HTTP on loopback), REST authentication off. Tests upload files over REST, point
a modality at the receiver under test, and ask Orthanc to push; the push is
synchronous, so when :meth:`Orthanc.store` returns the association is over.
Orthanc starts in ~0.2 s but needs ~3.5 s to stop, so the ``orthanc_peer``
fixture shares one server per session and empties it before each test.

What Orthanc 1.10.1 does when it pushes (checked by ``test_peers.py``):

* It proposes ~63 common storage SOP classes whatever it sends, each in two
  contexts: [Explicit VR LE] and [Implicit VR LE, Explicit VR Big Endian]
  (126 contexts, DCMTK's usual uncompressed proposal).
* An instance stored in another syntax (JPEG 2000, RLE, ...) makes it release
  the association and open a new one that adds a context with exactly that
  syntax. A study mixing syntaxes therefore arrives over several associations.
* If the SCP refuses the stored syntax, Orthanc transcodes to
  ``DicomScuPreferredTransferSyntax`` (default Explicit VR LE) or another
  accepted uncompressed syntax; the Debian build cannot decode JPEG 2000, so
  such a push fails with HTTP 500 "Cannot transcode from ...".
* The synchronous ``/modalities/{id}/store`` returns after the association
  is released.
"""

from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import attrs
import pytest

from .ports import (
    LOOPBACK,
    ListenerProcess,
    PeerError,
    attach_log,
    free_port,
    retry_on_address_in_use,
    start_listener,
)

ORTHANC = "/usr/sbin/Orthanc"

# Loopback only: never route REST calls through an http_proxy from the environment.
_http = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def orthanc_available() -> bool:
    return shutil.which(ORTHANC) is not None


def require_orthanc() -> None:
    if not orthanc_available():
        raise PeerError(
            f"{ORTHANC} not found; install the Debian package 'orthanc' "
            "(the test command should have)"
        )


@attrs.frozen
class Modality:
    """A DICOM peer Orthanc knows by name (its ``DicomModalities`` entry)."""

    aet: str
    host: str
    port: int

    def to_json(self) -> dict[str, Any]:
        return {"AET": self.aet, "Host": self.host, "Port": self.port}


@attrs.frozen
class RestResponse:
    status: int
    body: Any
    """Decoded JSON, or the raw text if the answer was not JSON."""

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@attrs.define
class Orthanc:
    """A running Orthanc; see :func:`orthanc`."""

    aet: str
    host: str
    dicom_port: int
    http_port: int
    workdir: Path
    listener: ListenerProcess

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.http_port}"

    def request(
        self,
        method: Literal["GET", "POST", "PUT", "DELETE"],
        path: str,
        body: bytes | Mapping[str, Any] | None = None,
        *,
        timeout: float = 30.0,
    ) -> RestResponse:
        """Call the REST API; HTTP errors are returned, not raised."""
        data = body if isinstance(body, bytes | None) else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.url}{path}", data=data, method=method)
        try:
            with _http.open(request, timeout=timeout) as response:
                return RestResponse(response.status, _decode(response.read()))
        except urllib.error.HTTPError as error:
            return RestResponse(error.code, _decode(error.read()))

    def upload(self, file: Path | bytes) -> str:
        """Store a DICOM file (``POST /instances``); return Orthanc's instance ID."""
        data = file.read_bytes() if isinstance(file, Path) else file
        answer = self._expect(self.request("POST", "/instances", data), "upload")
        return str(answer["ID"])

    def studies(self) -> list[str]:
        return [str(i) for i in self._expect(self.request("GET", "/studies"), "list studies")]

    def instances(self) -> list[str]:
        return [str(i) for i in self._expect(self.request("GET", "/instances"), "list instances")]

    def put_modality(self, name: str, modality: Modality) -> None:
        """Add or replace a modality (``PUT /modalities/{name}``)."""
        self._expect(self.request("PUT", f"/modalities/{name}", modality.to_json()), "put modality")

    def store(
        self,
        modality: str,
        resources: Sequence[str],
        *,
        extra: Mapping[str, Any] | None = None,
        timeout: float = 60.0,
    ) -> RestResponse:
        """Push patients/studies/series/instances (Orthanc IDs) to `modality` and wait.

        Returns the REST answer as is: on success a summary with
        ``InstancesCount`` and ``FailedInstancesCount``; when the SCP refuses
        or fails, an HTTP error status with Orthanc's explanation. `extra`
        adds fields to the request (e.g. ``{"LocalAet": "X"}``).
        """
        body = {"Resources": list(resources), "Synchronous": True, **(extra or {})}
        return self.request("POST", f"/modalities/{modality}/store", body, timeout=timeout)

    def reset(self) -> None:
        """Delete every patient and modality, so a shared server looks fresh to the next test."""
        for patient in self._expect(self.request("GET", "/patients"), "list patients"):
            self._expect(self.request("DELETE", f"/patients/{patient}"), "delete patient")
        for name in self._expect(self.request("GET", "/modalities"), "list modalities"):
            self._expect(self.request("DELETE", f"/modalities/{name}"), "delete modality")

    def log(self) -> str:
        return self.listener.log()

    def _expect(self, response: RestResponse, what: str) -> Any:
        if not response.ok:
            raise PeerError(f"Orthanc {what} failed: HTTP {response.status} {response.body}")
        return response.body


def _decode(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")


@contextmanager
def orthanc(
    workdir: Path,
    *,
    aet: str = "ORTHANC",
    modalities: Mapping[str, Modality] | None = None,
    config: Mapping[str, Any] | None = None,
    startup_timeout: float = 30.0,
) -> Iterator[Orthanc]:
    """Run Orthanc with a fresh configuration and storage under `workdir`.

    `modalities` are written into the configuration (more can be added later
    with :meth:`Orthanc.put_modality`); `config` overrides any setting, e.g.
    ``{"DicomScuPreferredTransferSyntax": "1.2.840.10008.1.2"}``.
    """
    require_orthanc()
    storage = workdir / "storage"
    storage.mkdir(parents=True, exist_ok=True)

    def start() -> Orthanc:
        dicom_port, http_port = free_port(), free_port()
        settings: dict[str, Any] = {
            "Name": f"oxidicom-test-{dicom_port}",
            "StorageDirectory": str(storage),
            "IndexDirectory": str(storage),
            "DicomAet": aet,
            "DicomPort": dicom_port,
            "HttpPort": http_port,
            "RemoteAccessAllowed": True,
            "AuthenticationEnabled": False,
            "DicomModalities": {name: m.to_json() for name, m in (modalities or {}).items()},
            "Plugins": [],
            "SaveJobs": False,
            "HttpsCACertificates": "",
            **(config or {}),
        }
        config_path = workdir / f"orthanc-{http_port}.json"
        config_path.write_text(json.dumps(settings, indent=2))
        listener = start_listener(
            "Orthanc",
            [ORTHANC, "--verbose", "--no-jobs", str(config_path)],
            ports=[dicom_port, http_port],
            log_path=workdir / f"orthanc-{http_port}.log",
            cwd=workdir,
            timeout=startup_timeout,
        )
        return Orthanc(
            aet=aet,
            host=LOOPBACK,
            dicom_port=dicom_port,
            http_port=http_port,
            workdir=workdir,
            listener=listener,
        )

    server = retry_on_address_in_use(start)
    try:
        server._expect(server.request("GET", "/system"), "REST API check")
        yield server
    except BaseException as exc:
        exc.add_note(server.listener.describe_log())
        raise
    finally:
        server.listener.stop(timeout=20.0)


@pytest.fixture(scope="session")
def orthanc_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Orthanc]:
    """One Orthanc for the whole session: stopping one takes Orthanc ~3.5 s."""
    with orthanc(tmp_path_factory.mktemp("orthanc")) as server:
        yield server


@pytest.fixture
def orthanc_peer(request: pytest.FixtureRequest, orthanc_server: Orthanc) -> Orthanc:
    """The session's Orthanc, emptied of patients and modalities for this test.

    Add a modality with :meth:`Orthanc.put_modality`. A failing test's report
    gets the part of Orthanc's log written during the test.
    """
    orthanc_server.listener.check_running()
    orthanc_server.reset()
    start = len(orthanc_server.log())
    attach_log(
        request,
        lambda: f"--- Orthanc log during the test ---\n{orthanc_server.log()[start:]}",
    )
    return orthanc_server
