"""The fuzz harness: a short run of each mode is part of the suite, and its checks can fail."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from fuzz import harness
from fuzz.inputs import FuzzInput, load_seeds, split_pdus
from fuzz.live import RefusedHostError, check_answer, check_target
from fuzz.target import Acceptor, BrokenPropertyError, Outcome, Wait
from oxidicom.dimse.messages import CEchoRQ, CStoreRQ
from oxidicom.net.handlers import AssociationContext, AssociationEnd, Peer, StoreResult
from oxidicom.net.server import DicomServer, ServerConfig
from oxidicom.testing.scu import BlockingScu
from oxidicom.ul.association import AcceptedContext
from oxidicom.ul.negotiation import AcceptorPolicy, negotiate
from oxidicom.ul.pdus import AAssociateAC, AAssociateRJ, AAssociateRQ

CORPUS = Path(harness.__file__).parent / "corpus"


def test_every_corpus_file_is_a_whole_conversation_the_acceptor_serves() -> None:
    names = sorted(path.stem for path in CORPUS.glob("*.bin"))
    assert names == [
        "dcmtk-echoscu",
        "dcmtk-storescu-ct",
        "oxidicom-echo-store-mr",
        "pynetdicom-echo-abort",
        "pynetdicom-echo-release",
        "pynetdicom-store-mr-extended",
    ]
    for path in CORPUS.glob("*.bin"):
        result = Acceptor().run([path.read_bytes()])
        expected = Outcome.PEER_ABORTED if "abort" in path.stem else Outcome.RELEASED
        assert result.outcome is expected, path.stem
        assert result.responses >= 1
        readme = (CORPUS / "README.md").read_text()
        assert f"`{path.name}`" in readme


def test_a_short_mutation_run_finds_nothing_and_covers_every_ending() -> None:
    summary = harness.Summary()
    harness.run_mutations(summary, seed=1, examples=400, until=None)
    assert summary.failures == []
    assert summary.inputs == 400
    assert {"aborted", "released", "peer-aborted", "connection-lost", "no-association"} <= set(
        summary.outcomes
    )


def test_a_short_generated_run_finds_nothing() -> None:
    summary = harness.Summary()
    harness.run_generated(summary, seed=1, examples=60, until=None)
    assert summary.failures == []
    assert summary.inputs >= 60
    assert {"aborted", "rejected"} <= set(summary.outcomes)


def test_a_crash_in_the_core_is_reported_with_its_reproducer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = Acceptor.feed

    def crash_on_release(self: Acceptor, data: bytes) -> None:
        if b"\x05\x00\x00\x00\x00\x04" in data:
            raise IndexError("planted")
        real(self, data)

    monkeypatch.setattr(Acceptor, "feed", crash_on_release)
    summary = harness.Summary()
    harness.run_mutations(summary, seed=1, examples=400, until=None)
    (failure,) = summary.failures
    assert failure.error.startswith("IndexError: planted")
    assert failure.reproduce.startswith("--mode mutate --seed 1 --examples ")
    assert b"\x05\x00\x00\x00\x00\x04" in failure.data


def test_what_we_send_is_checked() -> None:
    acceptor = Acceptor()
    acceptor.output += b"\x02\x00\x00\x00"  # a cut header, as if we had sent it
    with pytest.raises(BrokenPropertyError, match="truncated PDU header"):
        acceptor.close()


def test_waits_fire_the_timers() -> None:
    rq = split_pdus((CORPUS / "dcmtk-echoscu.bin").read_bytes())[0]
    idle = Acceptor().run([rq[:10], Wait(31.0)])  # ARTIM: no whole A-ASSOCIATE-RQ in time
    assert idle.outcome is Outcome.NO_ASSOCIATION
    silent = Acceptor().run([rq, Wait(61.0)])  # established, then the idle timeout
    assert silent.outcome is Outcome.ABORTED


def test_the_command_line(tmp_path: Path) -> None:
    lines: list[str] = []
    assert harness.main(["--mode", "mutate", "--examples", "50", "--seed", "3"], lines.append) == 0
    assert lines[0].startswith("inputs: 50 in ")
    saved = tmp_path / "input.bin"
    saved.write_bytes((CORPUS / "pynetdicom-echo-release.bin").read_bytes())
    lines.clear()
    assert harness.main(["--replay", str(saved)], lines.append) == 0
    assert "3 PDUs in, released" in lines[0]


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1"])
def test_live_mode_aims_at_loopback(host: str) -> None:
    check_target(host, i_own_this_host=False)


def test_live_mode_refuses_other_hosts_unless_owned() -> None:
    with pytest.raises(RefusedHostError, match="not a loopback address"):
        check_target("192.0.2.10", i_own_this_host=False)
    check_target("192.0.2.10", i_own_this_host=True)
    lines: list[str] = []
    assert harness.main(["--live", "192.0.2.10", "104"], lines.append) == 2
    assert lines[0].startswith("refused:")


def test_answers_are_checked_for_framing() -> None:
    assert check_answer(bytes.fromhex("07000000000400000201")) == (7,)
    with pytest.raises(BrokenPropertyError, match="truncated PDU"):
        check_answer(bytes.fromhex("0700000000040000"))
    with pytest.raises(BrokenPropertyError, match="PDU type 0x09"):
        check_answer(bytes.fromhex("09000000000400000000"))


# --- against a running oxidicom server -------------------------------------------------------


class _App:
    def __init__(self) -> None:
        self.policy = AcceptorPolicy(
            ae_title="FUZZ-TARGET",
            transfer_syntaxes=["1.2.840.10008.1.2", "1.2.840.10008.1.2.1"],
            abstract_syntaxes=None,
            implementation_class_uid="1.2.3.4",
        )

    def connection_allowed(self, peer: Peer) -> bool:
        return True

    def negotiate(self, request: AAssociateRQ, peer: Peer) -> AAssociateAC | AAssociateRJ:
        return negotiate(request, self.policy)

    def open(self, association: AssociationContext) -> _Handler:
        return _Handler()


class _Handler:
    def on_echo(self, request: CEchoRQ) -> int:
        return 0

    def on_store(self, request: CStoreRQ, context: AcceptedContext) -> StoreResult:
        return StoreResult(0xA700, "not stored: fuzz target")

    def on_end(self, end: AssociationEnd) -> None:
        return None


@pytest.fixture
def server() -> Iterator[int]:
    """An oxidicom server on loopback, on its own event loop thread; yields its port."""
    loop = asyncio.new_event_loop()
    config = ServerConfig(host="127.0.0.1", port=0, artim_timeout=5.0, idle_timeout=5.0)
    dicom = DicomServer(_App(), config)
    loop.run_until_complete(dicom.start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield dicom.port
    finally:
        asyncio.run_coroutine_threadsafe(dicom.close(grace=1.0), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


def test_live_mode_against_an_oxidicom_server(server: int) -> None:
    summary = harness.Summary()
    harness.run_live("127.0.0.1", server, summary, seed=5, examples=40, until=None, timeout=10.0)
    assert summary.failures == []
    assert summary.inputs == 40
    client = BlockingScu("127.0.0.1", server)
    assert client.echo() == 0
    client.release()


def test_the_seeds_include_the_synthetic_conversations() -> None:
    names = [name for name, _ in load_seeds()]
    assert "synthetic-echo-release" in names
    assert all(pdus for _, pdus in load_seeds())
    assert FuzzInput((b"ab", Wait(1.0), b"c"), "x").data == b"abc"
