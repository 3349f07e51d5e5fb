"""DICOM over TLS (PS3.15 B.1, BCP 195): the receiver with a certificate from a throwaway CA,
requiring client certificates from that CA; DCMTK's storescu and our own ``oxidicom send``
get in with one, nothing gets in without, and a client that never completes its handshake
holds up nobody.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

from oxidicom.storage.filemeta import encode_part10_header
from tests.peers.dcmtk import echoscu, storescu
from tests.peers.oxidicom_receiver import Receiver, start_receiver
from tests.reliability.support import (
    IMPLICIT_VR_LE,
    Instance,
    data_set_of,
    make_series,
    settled_tree_fds,
    stored_files,
    wait_for,
)

pytestmark = [pytest.mark.interop]


@attrs.frozen
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    rogue_cert: Path
    """A client certificate from another CA."""
    rogue_key: Path


def _openssl(*args: str | Path) -> None:
    result = subprocess.run(
        ["openssl", *map(str, args)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def _ca(folder: Path, name: str) -> tuple[Path, Path]:
    cert, key = folder / f"{name}.crt", folder / f"{name}.key"
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-keyout", key, "-out", cert, "-subj", f"/CN={name}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    return cert, key


def _leaf(folder: Path, name: str, ca: tuple[Path, Path], extensions: str) -> tuple[Path, Path]:
    cert, key, csr = folder / f"{name}.crt", folder / f"{name}.key", folder / f"{name}.csr"
    ext = folder / f"{name}.ext"
    ext.write_text(extensions)
    _openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj", f"/CN={name}"
    )
    _openssl(
        "x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1], "-CAcreateserial",
        "-days", "2", "-out", cert, "-extfile", ext,
    )  # fmt: skip
    return cert, key


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")
    ca = _ca(folder, "oxidicom-test-ca")
    rogue_ca = _ca(folder, "rogue-ca")
    server = _leaf(
        folder,
        "server",
        ca,
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
    )
    client = _leaf(folder, "client", ca, "extendedKeyUsage=clientAuth\n")
    rogue = _leaf(folder, "rogue", rogue_ca, "extendedKeyUsage=clientAuth\n")
    return Pki(ca[0], *server, *client, *rogue)


@pytest.fixture(scope="module", params=["1", "2"], ids=["one-worker", "two-workers"])
def tls_receiver(
    tmp_path_factory: pytest.TempPathFactory, pki: Pki, request: pytest.FixtureRequest
) -> Iterator[Receiver]:
    """The TLS receiver, alone and as two worker processes (whose handshakes are made on a
    connection taken from the shared socket, not by the event loop's own server)."""
    receiver = start_receiver(
        tmp_path_factory.mktemp("tls"),
        OXIDICOM_TLS_CERT=str(pki.server_cert),
        OXIDICOM_TLS_KEY=str(pki.server_key),
        OXIDICOM_TLS_CA=str(pki.ca),
        OXIDICOM_ARTIM_TIMEOUT="2s",
        OXIDICOM_WORKERS=request.param,
    )
    yield receiver
    assert receiver.stop() == 0, receiver.log()


def _write(folder: Path, instances: list[Instance]) -> list[Path]:
    folder.mkdir()
    paths = []
    for instance in instances:
        path = folder / f"{instance.sop_instance_uid}.dcm"
        header = encode_part10_header(
            sop_class_uid=instance.sop_class_uid,
            sop_instance_uid=instance.sop_instance_uid,
            transfer_syntax_uid=IMPLICIT_VR_LE,
        )
        path.write_bytes(header + instance.data_set)
        paths.append(path)
    return paths


def _oxidicom_send(
    receiver: Receiver, paths: list[Path], *tls: str | Path
) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "oxidicom", "send", *map(str, tls), "-q", "-aet", "OXISEND"]
    argv += [receiver.host, str(receiver.port), *map(str, paths)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)


def _stored(receiver: Receiver, instances: list[Instance]) -> int:
    wanted = {instance.sop_instance_uid for instance in instances}
    return sum(
        1 for path in stored_files(receiver.files_root) if path.stem.split("-", 1)[1] in wanted
    )


def test_storescu_with_a_client_certificate(
    tls_receiver: Receiver, pki: Pki, tmp_path: Path
) -> None:
    instances = make_series(3)
    paths = _write(tmp_path / "dicom", instances)
    tls = ["+tls", str(pki.client_key), str(pki.client_cert), "+cf", str(pki.ca)]
    result = storescu(tls_receiver.host, tls_receiver.port, paths, extra_args=tls)
    assert result.check().responses == ("Success",) * 3
    assert _stored(tls_receiver, instances) == 3


def test_oxidicom_send_with_a_client_certificate(
    tls_receiver: Receiver, pki: Pki, tmp_path: Path
) -> None:
    instances = make_series(3)
    paths = _write(tmp_path / "dicom", instances)
    tls: list[str | Path] = ["+tls", "--ca-file", pki.ca]
    tls += ["--cert", pki.client_cert, "--key", pki.client_key]
    result = _oxidicom_send(tls_receiver, paths, *tls)
    assert result.returncode == 0, result.stderr
    stored = {data_set_of(path) for path in stored_files(tls_receiver.files_root)}
    assert all(instance.data_set in stored for instance in instances)  # byte for byte


@pytest.mark.parametrize("client", ["no-certificate", "rogue-certificate", "plain-tcp"])
def test_clients_without_a_trusted_certificate_are_refused(
    client: str, tls_receiver: Receiver, pki: Pki, tmp_path: Path
) -> None:
    instances = make_series(1)
    paths = _write(tmp_path / "dicom", instances)
    if client == "plain-tcp":
        assert not storescu(tls_receiver.host, tls_receiver.port, paths).ok
        assert not echoscu(tls_receiver.host, tls_receiver.port).ok
    else:
        tls: list[str | Path] = ["+tls", "--ca-file", pki.ca]
        anonymous = ["+tla", "+cf", str(pki.ca)]
        if client == "rogue-certificate":
            tls += ["--cert", pki.rogue_cert, "--key", pki.rogue_key]
            anonymous = ["+tls", str(pki.rogue_key), str(pki.rogue_cert), "+cf", str(pki.ca)]
        assert _oxidicom_send(tls_receiver, paths, *tls).returncode != 0
        assert not storescu(tls_receiver.host, tls_receiver.port, paths, extra_args=anonymous).ok
    assert _stored(tls_receiver, instances) == 0


def test_a_client_that_never_handshakes_blocks_nobody(
    tls_receiver: Receiver, pki: Pki, tmp_path: Path
) -> None:
    baseline = settled_tree_fds(tls_receiver.process.pid)
    silent = [socket.create_connection((tls_receiver.host, tls_receiver.port)) for _ in range(5)]
    stalled = socket.create_connection((tls_receiver.host, tls_receiver.port))
    stalled.sendall(b"\x16\x03\x01\x02\x00")  # a ClientHello record header, then nothing
    try:
        instances = make_series(2)
        paths = _write(tmp_path / "dicom", instances)
        tls: list[str | Path] = ["+tls", "--ca-file", pki.ca]
        tls += ["--cert", pki.client_cert, "--key", pki.client_key]
        result = _oxidicom_send(tls_receiver, paths, *tls)
        assert result.returncode == 0, result.stderr
        assert _stored(tls_receiver, instances) == 2
        # The handshake timeout (ARTIM) closes them; nothing of them stays.
        for sock in [*silent, stalled]:
            sock.settimeout(30)
            with contextlib.suppress(ConnectionResetError):
                assert sock.recv(1) == b""
        wait_for(
            lambda: settled_tree_fds(tls_receiver.process.pid),
            lambda n: n <= baseline,
            timeout=30,
            what="fds",
        )
    finally:
        for sock in [*silent, stalled]:
            sock.close()
