"""The ready-made storage SCP: StorageSCP serves through DicomServer, Part10FileSink writes
complete Part 10 files or nothing, and disk trouble becomes a status, not an exception."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file

from oxidicom import dimse, net, ul
from oxidicom.part10 import standard_transfer_syntaxes

VERIFICATION = "1.2.840.10008.1.1"
IMPLICIT_LE = "1.2.840.10008.1.2"
POLICY = ul.AcceptorPolicy("STORE-SCP", standard_transfer_syntaxes(), None, "2.25.271828")


def _ct() -> net.Part10Header:
    path = get_testdata_file("CT_small.dcm")
    assert isinstance(path, str)
    return net.read_part10_header(path)


class Recorder:
    """The two callbacks of a StorageSCP, writing ``name_for(request)`` under ``root``."""

    def __init__(self, root: net.FilesRoot, name: str | None = None) -> None:
        self.root, self.name = root, name
        self.ends: list[tuple[str, net.AssociationEnd]] = []

    def store(
        self,
        association: net.AssociationContext,
        request: dimse.CStoreRQ,
        context: ul.AcceptedContext,
    ) -> net.StoreSink | net.StoreResult:
        if request.affected_sop_instance_uid == "2.25.1":
            return net.StoreResult(0xA900, "refused by the application")
        name = self.name or f"{association.calling_ae_title}/{request.affected_sop_instance_uid}"
        return net.Part10FileSink(self.root, name, request, context, association.calling_ae_title)

    def on_end(self, association: net.AssociationContext, end: net.AssociationEnd) -> None:
        self.ends.append((association.calling_ae_title, end))


@contextlib.asynccontextmanager
async def serving(scp: net.StorageSCP) -> AsyncIterator[net.DicomServer]:
    async with net.DicomServer(scp, net.ServerConfig(host="127.0.0.1", port=0)) as server:
        yield server


@contextlib.asynccontextmanager
async def peer_of(
    scp: net.StorageSCP, header: net.Part10Header
) -> AsyncIterator[net.ClientAssociation]:
    """An association with a server of ``scp`` that can send ``header``'s file."""
    async with (
        serving(scp) as server,
        await net.associate("127.0.0.1", server.port, _contexts(header)) as peer,
    ):
        yield peer


def _contexts(header: net.Part10Header) -> tuple[ul.PresentationContextRQ, ...]:
    return net.propose(
        [(VERIFICATION, [IMPLICIT_LE]), (header.sop_class_uid, [header.transfer_syntax_uid])]
    )


async def test_an_instance_becomes_a_part10_file(tmp_path: Path) -> None:
    recorder = Recorder(net.FilesRoot(tmp_path))
    scp = net.StorageSCP(POLICY, recorder.store, on_end=recorder.on_end)
    header = _ct()
    async with serving(scp) as server:
        config = net.RequestorConfig(calling_ae_title="MODALITY")
        async with await net.associate(
            "127.0.0.1", server.port, _contexts(header), config
        ) as association:
            assert await association.echo() == 0x0000
            result = await association.store_file(header)
    assert result == net.StoreResult()

    stored = tmp_path / "MODALITY" / header.sop_instance_uid  # its folder made on demand
    with open(header.path, "rb") as source:
        source.seek(header.data_set_offset)
        assert stored.read_bytes().endswith(source.read())  # the data set as it came
    meta = pydicom.dcmread(stored).file_meta
    assert meta.MediaStorageSOPInstanceUID == header.sop_instance_uid
    assert meta.TransferSyntaxUID == header.transfer_syntax_uid
    assert meta.SourceApplicationEntityTitle == "MODALITY"
    ((calling, end),) = recorder.ends
    assert calling == "MODALITY"
    assert end.outcome is net.Outcome.RELEASED
    assert (end.stats.instances_stored, end.stats.echoes) == (1, 1)


async def test_the_store_callback_can_refuse_and_the_association_goes_on(
    tmp_path: Path,
) -> None:
    recorder = Recorder(net.FilesRoot(tmp_path))
    header = _ct()
    async with peer_of(net.StorageSCP(POLICY, recorder.store), header) as peer:
        refused = await peer.store_data_set(
            header.sop_class_uid, "2.25.1", header.transfer_syntax_uid, b""
        )
        assert await peer.store_file(header) == net.StoreResult()
    assert refused == net.StoreResult(0xA900, "refused by the application")
    assert [p.name for p in (tmp_path / "OXIDICOM").iterdir()] == [header.sop_instance_uid]


@pytest.mark.parametrize("name", ["../outside.dcm", "/etc/x.dcm", "a//b.dcm", "./a.dcm"])
async def test_a_path_that_is_not_plain_is_refused_with_0xA700(tmp_path: Path, name: str) -> None:
    (tmp_path / "root").mkdir()
    recorder = Recorder(net.FilesRoot(tmp_path / "root"), name=name)
    header = _ct()
    async with peer_of(net.StorageSCP(POLICY, recorder.store), header) as peer:
        result = await peer.store_file(header)
        assert await peer.echo() == 0x0000  # still served
    assert result.status == 0xA700
    assert result.error_comment is not None
    assert "not a plain relative path" in result.error_comment
    assert [p for p in tmp_path.rglob("*") if not p.is_dir()] == []


async def test_a_storage_error_is_status_0xA700_with_the_reason(tmp_path: Path) -> None:
    recorder = Recorder(net.FilesRoot(tmp_path / "missing"))  # a root is never made
    header = _ct()
    async with peer_of(net.StorageSCP(POLICY, recorder.store), header) as peer:
        result = await peer.store_file(header)
    assert result.status == 0xA700
    assert result.error_comment is not None
    assert result.error_comment.startswith("cannot create a file in ")  # cut to 64 (LO)


async def test_a_peer_filtered_out_by_allow_gets_no_association(tmp_path: Path) -> None:
    recorder = Recorder(net.FilesRoot(tmp_path))
    seen: list[net.Peer] = []

    def allow(peer: net.Peer) -> bool:
        seen.append(peer)
        return False

    async with serving(net.StorageSCP(POLICY, recorder.store, allow=allow)) as server:
        with pytest.raises(net.AssociationError):
            await net.associate("127.0.0.1", server.port, _contexts(_ct()))
    assert [peer.host for peer in seen] == ["127.0.0.1"]
    assert recorder.ends == []  # never opened


@pytest.mark.parametrize("use_tmpfile", [True, False])
def test_an_aborted_sink_leaves_nothing_and_keeps_an_earlier_copy(
    tmp_path: Path, use_tmpfile: bool
) -> None:
    root = net.FilesRoot(tmp_path, use_tmpfile=use_tmpfile)
    request = dimse.CStoreRQ(
        message_id=1,
        affected_sop_class_uid="1.2.840.10008.5.1.4.1.1.7",
        affected_sop_instance_uid="2.25.7",
    )
    context = ul.AcceptedContext(1, "1.2.840.10008.5.1.4.1.1.7", IMPLICIT_LE)
    first = net.Part10FileSink(root, "series/2.25.7.dcm", request, context, "A")
    first.write([memoryview(b"complete")])
    assert first.finish() == net.StoreResult()
    complete = (tmp_path / "series" / "2.25.7.dcm").read_bytes()

    second = net.Part10FileSink(root, "series/2.25.7.dcm", request, context, "B")
    second.write([memoryview(b"half")])
    second.abort()
    second.abort()  # idempotent

    files = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert files == ["series/2.25.7.dcm"]  # no temporary file left, under any name
    assert (tmp_path / "series" / "2.25.7.dcm").read_bytes() == complete
    assert complete.endswith(b"complete")
    assert os.stat(tmp_path / "series" / "2.25.7.dcm").st_size == len(complete)
