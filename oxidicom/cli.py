"""``oxidicom``: run the receiver (default), act as an SCU (``echo``, ``send``), or test a
peer's Upper Layer against PS3.8 (``fuzz``).

The SCU commands take the options a DCMTK user knows from ``echoscu``/``storescu``
(``-aet``, ``-aec``, ``-pdu``, ``-to``, ``-ta``, ``-td``, ``-v``, ``-q``). Errors a user can
cause end in one clear line on stderr and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import shlex
import ssl
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Final, NoReturn

from oxidicom import __version__
from oxidicom.dimse import status as dimse_status
from oxidicom.implementation import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME
from oxidicom.net.requestor import AssociationError, RequestorConfig
from oxidicom.scu import SendSummary, echo, send_files
from oxidicom.ul.framer import HARD_PDU_LENGTH_CAP

if TYPE_CHECKING:  # the fuzzer needs hypothesis: imported only when it runs
    from oxidicom.conformance import FuzzConfig, Target

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
MIN_PDU: Final = 4096
"""PS3.8 calls a smaller Maximum Length Received unreasonable."""
MAX_PDU: Final = HARD_PDU_LENGTH_CAP
"""Advertising more would let a peer send P-DATA-TFs past our Upper Layer's memory cap."""


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line, like every other error of the command."""

    def error(self, message: str) -> NoReturn:
        command = self.prog.removeprefix("oxidicom").strip()
        where = f"{command}: " if command else ""
        self.exit(EXIT_USAGE, f"oxidicom: {where}{message} (see {self.prog} --help)\n")


def _int_in(low: int, high: int, what: str) -> Callable[[str], int]:
    """An argparse type: an integer from ``low`` to ``high``, else a usage error."""

    def parse(text: str) -> int:
        try:
            value: int | None = int(text)
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what} ({low}..{high})")
        return value

    return parse


_port = _int_in(1, 65535, "a TCP port")
_max_pdu = _int_in(MIN_PDU, MAX_PDU, "a maximum PDU length")


def _scu_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("host", help="hostname or IP address of the SCP")
    parser.add_argument("port", type=_port, help="TCP port of the SCP")
    network = parser.add_argument_group("network options (as in DCMTK)")
    network.add_argument(
        "-aet", "--aetitle", default="OXIDICOM", help="our (calling) AE title [OXIDICOM]"
    )
    network.add_argument("-aec", "--call", default="ANY-SCP", help="called AE title [ANY-SCP]")
    network.add_argument(
        "-pdu",
        "--max-pdu",
        type=_max_pdu,
        default=16384,
        metavar="N",
        help=f"our maximum receive PDU length, {MIN_PDU}..{MAX_PDU} [16384]",
    )
    network.add_argument(
        "-to", "--timeout", type=float, default=30.0, metavar="S", help="connect timeout [30]"
    )
    network.add_argument(
        "-ta",
        "--acse-timeout",
        type=float,
        default=30.0,
        metavar="S",
        help="timeout for association negotiation and release [30]",
    )
    network.add_argument(
        "-td",
        "--dimse-timeout",
        type=float,
        default=60.0,
        metavar="S",
        help="timeout for each response [60]",
    )
    tls = parser.add_argument_group("TLS options")
    tls.add_argument(
        "+tls",
        "--tls",
        action="store_true",
        help="use DICOM over TLS (BCP 195); verify the SCP against --ca-file or system CAs",
    )
    tls.add_argument("--ca-file", metavar="PEM", help="CA certificates to verify the SCP with")
    tls.add_argument("--cert", metavar="PEM", help="our client certificate (chain)")
    tls.add_argument("--key", metavar="PEM", help="private key of --cert")
    tls.add_argument("--no-verify", action="store_true", help="do not verify the SCP's certificate")
    output = parser.add_argument_group("output options")
    output.add_argument("-v", "--verbose", action="store_true", help="verbose mode")
    output.add_argument("-q", "--quiet", action="store_true", help="quiet mode: errors only")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="oxidicom",
        description=(
            "DICOM receiver for ChRIS. Without a command, runs the receiver configured by "
            "OXIDICOM_* environment variables (see README)."
        ),
        prefix_chars="-+",
    )
    parser.add_argument("--version", action="version", version=f"oxidicom {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("serve", help="run the receiver (the default)")
    echo_parser = commands.add_parser(
        "echo", help="send C-ECHO to an SCP (like echoscu)", prefix_chars="-+"
    )
    _scu_options(echo_parser)
    send_parser = commands.add_parser(
        "send",
        help="send DICOM files and folders to an SCP (like storescu +sd +r)",
        prefix_chars="-+",
    )
    _scu_options(send_parser)
    send_parser.add_argument(
        "paths", nargs="+", metavar="PATH", help="DICOM files, or folders searched recursively"
    )
    send_parser.add_argument(
        "-j",
        "--associations",
        type=int,
        default=1,
        metavar="N",
        help="parallel associations [1]",
    )
    _fuzz_options(commands)
    return parser


_SEVERITIES = ("critical", "error", "warning", "robustness")


def _fuzz_options(commands: argparse._SubParsersAction[_Parser]) -> None:
    fuzz = commands.add_parser(
        "fuzz",
        help="test a DICOM peer's Upper Layer against PS3.8 (needs oxidicom[fuzz])",
        description=(
            "Play hypothesis-generated and mutated PDU sequences against the SCP at HOST "
            "PORT (and nowhere else) and report its deviations from PS3.8, each with the "
            "bytes that reproduce it."
        ),
    )
    fuzz.add_argument(
        "host", nargs="?", help="the SCP's address (loopback unless --i-own-this-host)"
    )
    fuzz.add_argument("port", nargs="?", type=_port, help="its TCP port")
    budget = fuzz.add_argument_group("budget and reproducibility")
    budget.add_argument("--seed", type=int, default=0, help="hypothesis seed [0]")
    budget.add_argument(
        "--examples", type=int, default=20, metavar="N", help="inputs per probe [20]"
    )
    budget.add_argument(
        "--seconds",
        type=float,
        metavar="T",
        help="time budget shared evenly by the probes, instead of --examples: each plays "
        "inputs until its share runs out; shrinking a failure adds up to --shrink-seconds",
    )
    budget.add_argument(
        "--shrink-seconds", type=float, default=60.0, metavar="S", help="per probe [60]"
    )
    budget.add_argument(
        "--timeout", type=float, default=3.0, metavar="S", help="wait for each reaction [3]"
    )
    budget.add_argument(
        "--artim",
        type=float,
        default=40.0,
        metavar="S",
        help="how long an idle connection may stay open (0 skips that probe) [40]",
    )
    budget.add_argument(
        "--probe", action="append", default=[], metavar="NAME", help="run only this probe"
    )
    peer = fuzz.add_argument_group("the peer")
    peer.add_argument("-aet", "--aetitle", default="OXIDICOM-FUZZ", help="our AE title")
    peer.add_argument("-aec", "--call", default="ANY-SCP", help="the called AE title")
    peer.add_argument(
        "--no-store", action="store_true", help="never C-STORE test instances to the peer"
    )
    peer.add_argument(
        "--i-own-this-host",
        action="store_true",
        help="allow a non-loopback address: the inputs are malformed on purpose",
    )
    out = fuzz.add_argument_group("output")
    out.add_argument("--report", type=Path, metavar="FILE", help="write the JSON report here")
    out.add_argument(
        "--replay",
        type=Path,
        metavar="FILE",
        help="replay the findings of a JSON report instead of fuzzing",
    )
    out.add_argument("--finding", metavar="ID", help="with --replay: only this finding")
    out.add_argument(
        "--fail-on",
        choices=(*_SEVERITIES, "never"),
        default="error",
        help="exit 1 if a finding is at least this severe [error]",
    )
    out.add_argument("--list-checks", action="store_true", help="list the checks and exit")
    out.add_argument("-q", "--quiet", action="store_true", help="no progress lines")


def _tls_context(args: argparse.Namespace) -> ssl.SSLContext | None:
    if not args.tls:
        return None
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=args.ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if args.no_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if args.cert:
        context.load_cert_chain(args.cert, args.key)
    return context


def _requestor_config(args: argparse.Namespace) -> RequestorConfig:
    return RequestorConfig(
        calling_ae_title=args.aetitle,
        called_ae_title=args.call,
        max_length_received=args.max_pdu,
        implementation_class_uid=IMPLEMENTATION_CLASS_UID,
        implementation_version_name=IMPLEMENTATION_VERSION_NAME,
        connect_timeout=args.timeout,
        acse_timeout=args.acse_timeout,
        dimse_timeout=args.dimse_timeout,
        ssl=_tls_context(args),
    )


def _fail(message: str, code: int = EXIT_FAILURE) -> int:
    print(f"oxidicom: {message}", file=sys.stderr)
    return code


def _run_echo(args: argparse.Namespace) -> int:
    status = asyncio.run(echo(args.host, args.port, _requestor_config(args)))
    category, meaning = dimse_status.describe(status)
    if category is not dimse_status.Category.SUCCESS:
        return _fail(f"C-ECHO answered 0x{status:04X} ({meaning})")
    if not args.quiet:
        print(f"C-ECHO to {args.host}:{args.port}: success")
    return EXIT_OK


class _ProgressBar:
    """One line on stderr, redrawn in place when stderr is a terminal."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and sys.stderr.isatty()

    def __call__(self, summary: SendSummary, total: int) -> None:
        if not self.enabled or total == 0:
            return
        done = summary.instances + len(summary.failures)
        width = 30
        filled = width * done // total
        sys.stderr.write(
            f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} "
            f"{summary.bytes / 1e6:.1f} MB, {len(summary.failures)} failed"
        )
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")


def _run_send(args: argparse.Namespace) -> int:
    if args.associations < 1:
        return _fail("--associations must be at least 1", EXIT_USAGE)
    progress = _ProgressBar(not args.quiet)
    try:
        summary = asyncio.run(
            send_files(
                args.host,
                args.port,
                args.paths,
                _requestor_config(args),
                associations=args.associations,
                on_progress=progress,
            )
        )
    finally:
        progress.close()
    for failure in summary.failures:
        print(f"failed: {failure.path}: {failure.reason}", file=sys.stderr)
    if args.verbose:
        for skipped in summary.skipped:
            print(f"skipped: {skipped.path}: {skipped.reason}", file=sys.stderr)
    if not args.quiet:
        print(
            f"sent {summary.instances} instance(s), {summary.bytes / 1e6:.1f} MB in "
            f"{summary.seconds:.2f} s ({summary.megabytes_per_second:.1f} MB/s); "
            f"{len(summary.failures)} failed, {len(summary.skipped)} skipped (not DICOM)"
        )
    if summary.failures:
        return EXIT_FAILURE
    if summary.instances == 0:
        return _fail("no DICOM files found")
    return EXIT_OK


def _run_serve() -> int:
    _keep_numpy_out()
    # Imported here: the SCU commands should not pay for the receiver's imports (aio-pika,
    # nats, opentelemetry SDK).
    from oxidicom.receiver import main as serve  # noqa: PLC0415

    return serve()


def _keep_numpy_out() -> None:
    """Stop pydicom from importing numpy in the receiver process.

    pydicom imports numpy whenever it is installed, for pixel data that the receiver never
    decodes: that costs 17 MiB of resident memory and 0.13 s of start-up (numpy 2, Python
    3.11), a quarter of the receiver's footprint. Only in a fresh process: where numpy or
    pydicom is already loaded (an application that called :func:`main`), nothing changes.
    """
    if "numpy" not in sys.modules and "pydicom" not in sys.modules:
        sys.modules["numpy"] = None  # type: ignore[assignment]  # makes `import numpy` fail


def _run_fuzz(args: argparse.Namespace, argv: Sequence[str]) -> int:
    try:  # hypothesis is an optional dependency: oxidicom[fuzz]
        from oxidicom import conformance  # noqa: PLC0415
        from oxidicom.conformance.probes import PROBES  # noqa: PLC0415
    except ModuleNotFoundError as error:
        if error.name != "hypothesis":
            raise
        return _fail("oxidicom fuzz needs hypothesis: pip install 'oxidicom[fuzz]'", EXIT_USAGE)
    if args.list_checks:
        for check in conformance.CHECKS.values():
            print(f"{check.name}\n    {check.section}\n    {check.requirement}")
        return EXIT_OK
    if args.host is None or args.port is None:
        return _fail("fuzz: HOST and PORT are required", EXIT_USAGE)
    if args.examples < 1 or args.timeout <= 0 or (args.seconds is not None and args.seconds <= 0):
        return _fail("fuzz: --examples, --timeout and --seconds must be positive", EXIT_USAGE)
    unknown = set(args.probe) - {probe.name for probe in PROBES}
    if unknown:
        names = ", ".join(probe.name for probe in PROBES)
        return _fail(f"fuzz: unknown probe {sorted(unknown)[0]!r}; probes: {names}", EXIT_USAGE)
    try:
        target = conformance.Target.resolve(args.host, args.port, allow_remote=args.i_own_this_host)
    except conformance.UnsafeTargetError as error:
        return _fail(str(error), EXIT_USAGE)
    config = conformance.FuzzConfig(
        seed=args.seed,
        examples=args.examples,
        seconds=args.seconds,
        timeout=args.timeout,
        artim=args.artim,
        store=not args.no_store,
        calling_ae_title=args.aetitle,
        called_ae_title=args.call,
        shrink_seconds=args.shrink_seconds,
        probes=tuple(args.probe),
    )
    log = None if args.quiet else (lambda line: print(line, file=sys.stderr, flush=True))
    try:
        if args.replay is not None:
            return _replay(target, config, args)
        report = conformance.run(target, config, log=log, command="oxidicom " + shlex.join(argv))
    except conformance.TargetUnusableError as error:
        return _fail(f"fuzz: {error}", EXIT_USAGE)
    print(conformance.render(report))
    if args.report is not None:
        conformance.write_json(report, args.report)
        print(f"\nreport written to {args.report}")
    worst = report.worst()
    failing = args.fail_on != "never" and worst is not None
    if failing and worst is not None and worst.rank <= _SEVERITIES.index(args.fail_on):
        return EXIT_FAILURE
    return EXIT_OK


def _replay(target: Target, config: FuzzConfig, args: argparse.Namespace) -> int:
    """Play the reproducers of a saved report again; exit 1 if any still fails."""
    from oxidicom.conformance import engine as fuzz_engine  # noqa: PLC0415
    from oxidicom.conformance import report as fuzz_report  # noqa: PLC0415
    from oxidicom.conformance.verdicts import describe  # noqa: PLC0415

    try:
        saved = fuzz_report.read_json(args.replay)
    except (OSError, ValueError, KeyError) as error:
        return _fail(f"fuzz: cannot read {args.replay}: {error}", EXIT_USAGE)
    findings = [f for f in saved.findings if args.finding in (None, f.id)]
    if not findings:
        return _fail(f"fuzz: no finding {args.finding!r} in {args.replay}", EXIT_USAGE)
    profile = fuzz_engine.replay_profile(target, config)
    reproduced = 0
    for finding in findings:
        if finding.verdict.check == "peer-alive":
            print(f"{finding.id}: {finding.verdict.check} is not replayed (it needs the run)")
            continue
        result = fuzz_engine.replay(target, finding, config, profile)
        reproduced += result.reproduced
        word = "reproduced" if result.reproduced else "NOT reproduced"
        print(f"{finding.id} {finding.verdict.check} ({finding.verdict.code}): {word}")
        for exchange in result.transcript.exchanges:
            print(f"    {exchange.step.note}: {describe(exchange.reaction)}")
    return EXIT_FAILURE if reproduced else EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(arguments)
    if args.command in (None, "serve"):
        return _run_serve()
    if args.command == "fuzz":
        return _run_fuzz(args, arguments)
    level = logging.DEBUG if args.verbose else logging.ERROR if args.quiet else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s: %(message)s")
    try:
        if args.command == "echo":
            return _run_echo(args)
        return _run_send(args)
    except AssociationError as error:
        return _fail(str(error))
    except (OSError, ssl.SSLError) as error:
        return _fail(str(error))
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
