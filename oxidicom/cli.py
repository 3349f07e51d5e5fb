"""``oxidicom``: run the receiver (default), or act as an SCU: ``echo``, ``send``.

The SCU commands take the options a DCMTK user knows from ``echoscu``/``storescu``
(``-aet``, ``-aec``, ``-pdu``, ``-to``, ``-ta``, ``-td``, ``-v``, ``-q``). Errors a user can
cause end in one clear line on stderr and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import ssl
import sys
from collections.abc import Sequence

from oxidicom import __version__
from oxidicom.dimse import status as dimse_status
from oxidicom.implementation import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME
from oxidicom.net.requestor import AssociationError, RequestorConfig
from oxidicom.scu import SendSummary, echo, send_files

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


def _scu_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("host", help="hostname or IP address of the SCP")
    parser.add_argument("port", type=int, help="TCP port of the SCP")
    network = parser.add_argument_group("network options (as in DCMTK)")
    network.add_argument(
        "-aet", "--aetitle", default="OXIDICOM", help="our (calling) AE title [OXIDICOM]"
    )
    network.add_argument("-aec", "--call", default="ANY-SCP", help="called AE title [ANY-SCP]")
    network.add_argument(
        "-pdu",
        "--max-pdu",
        type=int,
        default=16384,
        metavar="N",
        help="our maximum receive PDU length, 4096..131072 and more [16384]",
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
    parser = argparse.ArgumentParser(
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
    return parser


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
    # Imported here: the SCU commands should not pay for the receiver's imports (aio-pika,
    # nats, opentelemetry SDK).
    from oxidicom.receiver import main as serve  # noqa: PLC0415

    return serve()


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command in (None, "serve"):
        return _run_serve()
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
