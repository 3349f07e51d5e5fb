"""DCMTK 3.6.x command-line tools as test peers: storescu, echoscu, storescp.

DCMTK is the reference implementation most PACS interoperate with, so pushing
through its ``storescu`` and receiving through its ``storescp`` is the closest
we get to production traffic. The test command installs DCMTK: its absence is
an error, never a skip.

Every DCMTK process gets ``TCP_NODELAY=1`` in its environment: Debian's DCMTK
3.6.7 leaves Nagle's algorithm on unless that variable says otherwise (its
trace log: "environment variable TCP_NODELAY not set, using the default value
(0)"), and small PDUs would then wait on delayed ACKs.

Quirks worth knowing when writing tests (DCMTK 3.6.7):

* storescu decodes each file and re-encodes it in the negotiated transfer
  syntax ("Converting transfer syntax: X -> X" even when X is unchanged): it
  drops trailing padding and group lengths, and re-deflates deflated files, so
  what arrives is *not* byte-identical to the file. For byte-exact sending use
  :func:`tests.peers.pynetdicom_peer.run_scu` with a file path.
* storescu proposes uncompressed syntaxes only, unless told otherwise; it
  cannot decompress JPEG-LS or JPEG 2000, so sending such a file needs the
  matching proposal (:func:`proposal_for`), else the store fails locally with
  "DIMSE Failed to send message".
* Default proposal ``uncompr`` gives, per SOP class, one context with Explicit
  VR Little Endian and one with Explicit VR Big Endian + Implicit VR Little
  Endian; compressed proposals give one context with the compressed syntax and
  one with all three uncompressed ones. Without ``-R`` storescu proposes ~64
  SOP classes (128 contexts); :func:`storescu` passes ``-R`` unless asked not to.
* storescp aborts the association on a data set PDV of odd length ("DIMSE: Odd
  Fragment Length"), in both modes. pydicom's ``image_dfl.dcm`` has an odd
  deflate stream, so sending it as stored (pynetdicom) fails against DCMTK.
* storescp records an instance (our journal, see :meth:`Storescp.received`)
  only for successful stores, after the C-STORE response is sent.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, Literal, Protocol

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

DCMTK_ENV = {"TCP_NODELAY": "1"}
TOOLS = ("storescu", "echoscu", "storescp", "dcmdump")

Proposal = Literal[
    "uncompr",
    "little",
    "big",
    "implicit",
    "lossless",
    "jpeg8",
    "jpeg12",
    "j2k-lossless",
    "j2k-lossy",
    "jls-lossless",
    "jls-lossy",
    "rle",
    "deflated",
    "mpeg2",
    "mpeg2-high",
    "mpeg4",
    "mpeg4-bd",
    "mpeg4-2-2d",
    "mpeg4-2-3d",
    "mpeg4-2-st",
    "hevc",
    "hevc10",
]
"""storescu ``--propose-*`` options, by their DCMTK long names (``-x=``/``-xe``/...)."""

Accept = Literal[
    "uncompr",
    "little",
    "big",
    "implicit",
    "all",
    "lossless",
    "jpeg8",
    "jpeg12",
    "j2k-lossless",
    "j2k-lossy",
    "jls-lossless",
    "jls-lossy",
    "rle",
    "deflated",
]
"""storescp transfer syntax policy: ``all`` is ``+xa``, ``implicit`` is ``+xi``
(only Implicit VR LE), anything else is ``--prefer-NAME`` (that syntax first,
then the uncompressed ones)."""

_PROPOSAL_FLAGS: dict[str, str] = {
    "uncompr": "-x=",
    "little": "-xe",
    "big": "-xb",
    "implicit": "-xi",
    "lossless": "-xs",
    "jpeg8": "-xy",
    "jpeg12": "-xx",
    "j2k-lossless": "-xv",
    "j2k-lossy": "-xw",
    "jls-lossless": "-xt",
    "jls-lossy": "-xu",
    "rle": "-xr",
    "deflated": "-xd",
    "mpeg2": "-xm",
    "mpeg2-high": "-xh",
    "mpeg4": "-xn",
    "mpeg4-bd": "-xl",
    "mpeg4-2-2d": "-x2",
    "mpeg4-2-3d": "-x3",
    "mpeg4-2-st": "-xo",
    "hevc": "-x4",
    "hevc10": "-x5",
}

_ACCEPT_FLAGS: dict[str, str] = {
    "uncompr": "+x=",
    "little": "+xe",
    "big": "+xb",
    "implicit": "+xi",
    "all": "+xa",
    "lossless": "+xs",
    "jpeg8": "+xy",
    "jpeg12": "+xx",
    "j2k-lossless": "+xv",
    "j2k-lossy": "+xw",
    "jls-lossless": "+xt",
    "jls-lossy": "+xu",
    "rle": "+xr",
    "deflated": "+xd",
}

_PROPOSAL_BY_TRANSFER_SYNTAX: dict[str, Proposal] = {
    "1.2.840.10008.1.2": "implicit",
    "1.2.840.10008.1.2.1": "little",
    "1.2.840.10008.1.2.2": "big",
    "1.2.840.10008.1.2.1.99": "deflated",
    "1.2.840.10008.1.2.4.50": "jpeg8",
    "1.2.840.10008.1.2.4.51": "jpeg12",
    "1.2.840.10008.1.2.4.70": "lossless",
    "1.2.840.10008.1.2.4.80": "jls-lossless",
    "1.2.840.10008.1.2.4.81": "jls-lossy",
    "1.2.840.10008.1.2.4.90": "j2k-lossless",
    "1.2.840.10008.1.2.4.91": "j2k-lossy",
    "1.2.840.10008.1.2.5": "rle",
    "1.2.840.10008.1.2.4.100": "mpeg2",
    "1.2.840.10008.1.2.4.101": "mpeg2-high",
    "1.2.840.10008.1.2.4.102": "mpeg4",
    "1.2.840.10008.1.2.4.103": "mpeg4-bd",
    "1.2.840.10008.1.2.4.104": "mpeg4-2-2d",
    "1.2.840.10008.1.2.4.105": "mpeg4-2-3d",
    "1.2.840.10008.1.2.4.106": "mpeg4-2-st",
    "1.2.840.10008.1.2.4.107": "hevc",
    "1.2.840.10008.1.2.4.108": "hevc10",
}

_STORE_RESPONSE = re.compile(r"^I: Received Store Response \((?P<status>.*)\)$", re.MULTILINE)
_ECHO_RESPONSE = re.compile(r"^I: Received Echo Response \((?P<status>.*)\)$", re.MULTILINE)


def dcmtk_available() -> bool:
    """Whether all DCMTK tools these helpers use are on PATH."""
    return all(shutil.which(tool) for tool in TOOLS)


def require_dcmtk() -> None:
    """Raise :class:`PeerError` naming the missing tools (DCMTK is a test requirement)."""
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        raise PeerError(
            f"DCMTK tools not found on PATH: {', '.join(missing)}; "
            "install the Debian package 'dcmtk' (the test command should have)"
        )


def proposal_for(transfer_syntax: str) -> Proposal:
    """The storescu proposal that offers `transfer_syntax` itself, to send a file unconverted."""
    try:
        return _PROPOSAL_BY_TRANSFER_SYNTAX[transfer_syntax]
    except KeyError:
        raise ValueError(f"storescu has no option proposing {transfer_syntax}") from None


@attrs.frozen
class DcmtkResult:
    """How a DCMTK SCU run ended. DCMTK logs (``I:``/``E:``/``F:`` lines) are in `stderr`."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    responses: tuple[str, ...]
    """Status text of each DIMSE response, in order, e.g. ``("Success", "Success")``."""

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def succeeded(self) -> int:
        return sum(1 for status in self.responses if status == "Success")

    def check(self) -> DcmtkResult:
        """Return self if the tool exited 0, else raise :class:`PeerError` with its output."""
        if not self.ok:
            raise PeerError(f"{shlex.join(self.argv)} exited {self.returncode}\n{self.stderr}")
        return self


def storescu(
    host: str,
    port: int,
    paths: Sequence[Path | str],
    *,
    calling_aet: str = "STORESCU",
    called_aet: str = "ANY-SCP",
    proposal: Proposal = "uncompr",
    required_only: bool = True,
    combine: bool = False,
    max_pdu: int | None = None,
    abort: bool = False,
    halt_on_failure: bool = True,
    extra_args: Sequence[str] = (),
    timeout: float = 60.0,
) -> DcmtkResult:
    """Send `paths` (files, or directories scanned recursively) with DCMTK's storescu.

    `required_only` (``-R``) proposes only the SOP classes of the files;
    `combine` (``+C``) puts all proposed syntaxes in one context per SOP class;
    `abort` ends with A-ABORT instead of A-RELEASE; `halt_on_failure=False`
    (``-nh``) keeps sending after a failed store. Does not raise on a non-zero
    exit: tests of failures need the result; call :meth:`DcmtkResult.check`.
    """
    require_dcmtk()
    argv = ["storescu", "-v", "-aet", calling_aet, "-aec", called_aet, _PROPOSAL_FLAGS[proposal]]
    if required_only:
        argv.append("-R")
    if combine:
        argv.append("+C")
    if max_pdu is not None:
        argv += ["--max-pdu", str(max_pdu)]
    if abort:
        argv.append("--abort")
    if not halt_on_failure:
        argv.append("--no-halt")
    if any(Path(p).is_dir() for p in paths):
        argv += ["--scan-directories", "--recurse"]
    argv += [*extra_args, host, str(port), *(str(p) for p in paths)]
    return _run(argv, _STORE_RESPONSE, timeout)


def echoscu(
    host: str,
    port: int,
    *,
    calling_aet: str = "ECHOSCU",
    called_aet: str = "ANY-SCP",
    extra_args: Sequence[str] = (),
    timeout: float = 30.0,
) -> DcmtkResult:
    """Send one C-ECHO with DCMTK's echoscu; `responses` holds its status text."""
    require_dcmtk()
    argv = ["echoscu", "-v", "-aet", calling_aet, "-aec", called_aet, *extra_args]
    argv += [host, str(port)]
    return _run(argv, _ECHO_RESPONSE, timeout)


def _run(argv: list[str], responses: re.Pattern[str], timeout: float) -> DcmtkResult:
    try:
        done = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            env=_env(),
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise PeerError(f"{shlex.join(argv)} did not finish in {timeout:g} s") from exc
    return DcmtkResult(
        argv=tuple(argv),
        returncode=done.returncode,
        stdout=done.stdout,
        stderr=done.stderr,
        responses=tuple(m["status"] for m in responses.finditer(done.stderr)),
    )


def _env() -> dict[str, str]:
    return {**os.environ, **DCMTK_ENV}


@attrs.frozen
class StoredFile:
    """One instance storescp wrote, with the AE titles of the association that sent it."""

    path: Path
    calling_aet: str
    called_aet: str


@attrs.define
class Storescp:
    """A running DCMTK storescp; see :func:`storescp`."""

    host: str
    port: int
    aet: str
    output_dir: Path
    listener: ListenerProcess
    _journal: Path

    def received(self) -> list[StoredFile]:
        """Instances fully received so far, in arrival order."""
        try:
            text = self._journal.read_text()
        except FileNotFoundError:
            return []
        files = []
        for line in text.split("\n")[:-1]:  # the last piece is "" or a line being written
            calling, called, path = line.split("\t", 2)
            files.append(StoredFile(path=Path(path), calling_aet=calling, called_aet=called))
        return files

    def wait_for(self, count: int, timeout: float = 10.0) -> list[StoredFile]:
        """Wait until at least `count` instances arrived; return them all.

        storescp records an instance only after it is written in full and the
        C-STORE response is sent, which may be just after the sender has
        already returned: wait here rather than listing the directory.
        """
        deadline = time.monotonic() + timeout
        while True:
            self.listener.check_running()
            files = self.received()
            if len(files) >= count:
                return files
            if time.monotonic() > deadline:
                raise PeerError(
                    f"storescp received {len(files)} of {count} instances in {timeout:g} s"
                )
            time.sleep(0.02)

    def log(self) -> str:
        return self.listener.log()


@contextmanager
def storescp(
    workdir: Path,
    *,
    aet: str = "STORESCP",
    accept: Accept = "all",
    bit_preserving: bool = False,
    max_pdu: int | None = None,
    extra_args: Sequence[str] = (),
    startup_timeout: float = 10.0,
) -> Iterator[Storescp]:
    """Run storescp on a free loopback port, writing instances under ``workdir/received``.

    `bit_preserving` (``+B``) streams each data set to disk exactly as it came
    off the wire; the default mode decodes and re-encodes it. `accept` picks the
    transfer syntaxes it accepts (default: everything DCMTK knows). On leaving
    the block storescp is stopped; if it had died, that raises with its log,
    and an exception from the block gets the log attached as a note.
    """
    require_dcmtk()
    output_dir = workdir / "received"
    output_dir.mkdir(parents=True, exist_ok=True)
    journal = workdir / "received.tsv"
    # Runs (via /bin/sh) after each instance is stored; "#x" are DCMTK placeholders.
    record = f'printf "%s\\t%s\\t%s/%s\\n" "#a" "#c" "#p" "#f" >> {shlex.quote(str(journal))}'
    options = [
        "-aet",
        aet,
        _ACCEPT_FLAGS[accept],
        "+B" if bit_preserving else "-B",
        "--output-directory",
        str(output_dir),
        "--exec-on-reception",
        record,
        "--exec-sync",
        "--disable-host-lookup",
    ]
    if max_pdu is not None:
        options += ["--max-pdu", str(max_pdu)]
    options += extra_args

    def start() -> Storescp:
        port = free_port()
        listener = start_listener(
            "storescp",
            ["storescp", "-v", *options, str(port)],
            ports=[port],
            log_path=workdir / f"storescp-{port}.log",
            env=DCMTK_ENV,
            timeout=startup_timeout,
        )
        return Storescp(
            host=LOOPBACK,
            port=port,
            aet=aet,
            output_dir=output_dir,
            listener=listener,
            journal=journal,
        )

    scp = retry_on_address_in_use(start)
    try:
        yield scp
    except BaseException as exc:
        exc.add_note(scp.listener.describe_log())
        raise
    finally:
        scp.listener.stop()


class StorescpFactory(Protocol):
    """Starts a storescp with :func:`storescp`'s options (the work directory is provided)."""

    def __call__(
        self,
        *,
        aet: str = ...,
        accept: Accept = ...,
        bit_preserving: bool = ...,
        max_pdu: int | None = ...,
        extra_args: Sequence[str] = ...,
        startup_timeout: float = ...,
    ) -> Storescp: ...


@pytest.fixture
def storescp_factory(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StorescpFactory]:
    """Start storescp peers: ``scp = storescp_factory(bit_preserving=True)``.

    Each runs in its own temporary directory and stops at teardown; its log is
    attached to the report of a failing test.
    """
    with ExitStack() as stack:

        def start(**options: Any) -> Storescp:
            workdir = tmp_path_factory.mktemp("storescp")
            scp = stack.enter_context(storescp(workdir, **options))
            attach_log(request, scp.listener.describe_log)
            return scp

        yield start


@pytest.fixture
def dcmtk_storescp(storescp_factory: StorescpFactory) -> Storescp:
    """A storescp accepting every transfer syntax DCMTK knows, in normal (re-encoding) mode."""
    return storescp_factory()
