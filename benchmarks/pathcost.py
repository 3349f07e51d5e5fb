"""What one instance costs on the receiving path, without the network and without the noise.

The runner (``benchmarks.run``) measures the receiver as deployed, on a shared machine where
the kernel's share of a figure moves by 2x from one minute to the next. This script isolates
the Python side. It records the bytes an SCU sends (A-ASSOCIATE-RQ, then for each file of a
set its C-STORE-RQ and data set in P-DATA-TFs of ``--max-pdu``) and feeds them to the same
objects ``python -m oxidicom`` runs (:class:`~oxidicom.net.acceptor.AcceptorProtocol` with
the receiver's :class:`~oxidicom.receiver.CubeApplication`, storing into a tmpfs folder),
through a transport that only counts what is sent. Each PDU is one read, as when the
receiver keeps up with its sender (``--per-read instance``: one read per instance).

It prints the wall time per instance (median over rounds; as noisy as any timing here) and,
with ``--instructions``, the user-space instructions per instance counted by valgrind's
callgrind: the count of a 3-round run less that of a 1-round run, over the instances of two
rounds, so start-up cancels out. That count repeats to within a fraction of a percent
whatever else the machine does, which makes it the figure to compare two versions with.
For an earlier version, run from outside the checkout with that version's ``oxidicom``
package first on ``PYTHONPATH``::

    mkdir /tmp/before && git archive REV oxidicom | tar -x -C /tmp/before
    cd /tmp && PYTHONPATH=/tmp/before:$OLDPWD python -m benchmarks.pathcost --instructions

The kernel's part (file creation, ``writev``, ``linkat``; ``send`` is not made) is in the
wall time only, on tmpfs: the runner measures it on the real disk.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks.datasets import parse_set_names, read_manifest
from oxidicom.dimse.messages import CStoreRQ, encode_message
from oxidicom.net.acceptor import AcceptorProtocol
from oxidicom.net.server import DicomServer, ServerConfig
from oxidicom.part10 import read_part10_header
from oxidicom.receiver import CubeApplication
from oxidicom.settings import Settings
from oxidicom.storage.events import (
    AssociationEnded,
    AssociationInfo,
    InstanceRejected,
    InstanceStored,
)
from oxidicom.storage.instance import Store
from oxidicom.testing.transport import MemoryTransport
from oxidicom.ul.items import PresentationContextRQ, UserInformation
from oxidicom.ul.pdus import (
    AAssociateRQ,
    AReleaseRQ,
    PDataTF,
    PresentationDataValue,
    encode_pdu,
)

_CALLGRIND_TOTAL = re.compile(r"Collected : (\d+)")


class _DiscardingObserver:
    """The storage observer, minus NATS and AMQP (the runner measures those)."""

    def association_started(self, info: AssociationInfo) -> None:
        pass

    def instance_stored(self, event: InstanceStored) -> None:
        pass

    def instance_rejected(self, event: InstanceRejected) -> None:
        pass

    def association_ended(self, event: AssociationEnded) -> None:
        pass


def record(paths: Sequence[Path], max_pdu: int) -> tuple[bytes, list[list[bytes]]]:
    """The A-ASSOCIATE-RQ, and each instance's PDUs, as an SCU would send them."""
    fragment = max_pdu - 6
    instances = []
    contexts: dict[tuple[str, str], int] = {}
    for message_id, path in enumerate(paths, start=1):
        header = read_part10_header(path)
        key = (header.sop_class_uid, header.transfer_syntax_uid)
        context_id = contexts.setdefault(key, 2 * len(contexts) + 1)
        command = encode_message(
            CStoreRQ(message_id, header.sop_class_uid, header.sop_instance_uid)
        )
        pdus = [encode_pdu(PDataTF((PresentationDataValue(context_id, True, True, command),)))]
        data_set = path.read_bytes()[header.data_set_offset :]
        for start in range(0, len(data_set), fragment):
            piece = data_set[start : start + fragment]
            last = start + fragment >= len(data_set)
            value = PresentationDataValue(context_id, False, last, piece)
            pdus.append(encode_pdu(PDataTF((value,))))
        instances.append(pdus)
    request = AAssociateRQ(
        called_ae_title="OXIDICOM",
        calling_ae_title="PATHCOST",
        presentation_contexts=tuple(
            PresentationContextRQ(context_id, sop_class, (transfer_syntax,))
            for (sop_class, transfer_syntax), context_id in contexts.items()
        ),
        user_information=UserInformation(maximum_length=max_pdu, implementation_class_uid="2.25.1"),
    )
    return encode_pdu(request), instances


def _feed(protocol: AcceptorProtocol, data: bytes) -> None:
    view = memoryview(data)
    while view:
        buffer = protocol.get_buffer(len(view))
        count = min(len(buffer), len(view))
        buffer[:count] = view[:count]
        protocol.buffer_updated(count)
        view = view[count:]


async def _rounds(
    request: bytes, instances: list[list[bytes]], rounds: int, per_read: str, scratch: Path
) -> list[float]:
    settings = Settings.from_env(
        {"OXIDICOM_FILES_ROOT": str(scratch), "OXIDICOM_AMQP_ADDRESS": "amqp://unused"}
    )
    reads = instances if per_read == "pdu" else [[b"".join(pdus)] for pdus in instances]
    per_instance = []
    for number in range(rounds):
        root = scratch / str(number)  # a new folder each round: no file is replaced
        root.mkdir()
        store = Store(root)
        server = DicomServer(
            CubeApplication(settings, store, _DiscardingObserver()), ServerConfig()
        )
        protocol = AcceptorProtocol(server)
        transport = MemoryTransport(keep_sent=False)
        protocol.connection_made(transport)  # type: ignore[arg-type]
        _feed(protocol, request)
        started = time.perf_counter()
        for pdus in reads:
            for pdu in pdus:
                _feed(protocol, pdu)
        per_instance.append((time.perf_counter() - started) / len(instances))
        _feed(protocol, encode_pdu(AReleaseRQ()))
        protocol.connection_lost(None)
        if transport.writes < len(instances) + 2:
            raise SystemExit(f"only {transport.writes} responses: the instances were not stored")
    return per_instance


def _measure(args: argparse.Namespace, paths: list[Path]) -> list[float]:
    request, instances = record(paths, args.max_pdu)
    scratch = Path(tempfile.mkdtemp(prefix="oxidicom-pathcost-", dir=args.scratch))
    try:
        return asyncio.run(_rounds(request, instances, args.rounds, args.per_read, scratch))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _instructions(args: argparse.Namespace, instances: int) -> float:
    """User-space instructions per instance: callgrind's count for 3 rounds less 1 round."""
    if shutil.which("valgrind") is None:
        raise SystemExit("--instructions needs valgrind (apt-get install -y valgrind)")
    import oxidicom  # noqa: PLC0415 - only to find the code being measured

    # Compiled beforehand, so that neither run pays for compiling the other's modules.
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(Path(oxidicom.__file__).parent)],
        check=True,
        capture_output=True,
    )
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}  # no idle BLAS threads counted
    totals = []
    for rounds in (1, 3):
        command = [
            "valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
            sys.executable, "-m", "benchmarks.pathcost", *_passed_on(args), "--rounds", str(rounds),
        ]  # fmt: skip
        result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        found = _CALLGRIND_TOTAL.search(result.stderr)
        if result.returncode != 0 or found is None:
            raise SystemExit(f"valgrind run failed:\n{result.stderr[-2000:]}")
        totals.append(int(found.group(1)))
    return (totals[1] - totals[0]) / (2 * instances)


def _passed_on(args: argparse.Namespace) -> list[str]:
    options = ["--set", args.set, "--step", str(args.step), "--max-pdu", str(args.max_pdu)]
    options += ["--per-read", args.per_read]
    return [*options, "--scratch", args.scratch] if args.scratch else options


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pathcost", description=__doc__)
    parser.add_argument("--set", default="small", help="a generated set (benchmarks.generate)")
    parser.add_argument("--step", type=int, default=4, help="every N-th file of the set")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--max-pdu", type=int, default=16384)
    parser.add_argument("--per-read", choices=("pdu", "instance"), default="pdu")
    parser.add_argument("--scratch", default="/dev/shm", help="where the files go (tmpfs)")
    parser.add_argument(
        "--instructions", action="store_true", help="also count instructions (valgrind)"
    )
    args = parser.parse_args(argv)
    [name] = parse_set_names(args.set)
    manifest = read_manifest(name)
    if manifest is None:
        raise SystemExit(f"set {name!r} is missing: python -m benchmarks.generate --sets {name}")
    paths = manifest.file_paths()[:: max(args.step, 1)]
    per_instance = _measure(args, paths)
    rounds = " ".join(f"{seconds * 1e6:.1f}" for seconds in per_instance)
    print(
        f"{name}: {len(paths)} instances, one read per {args.per_read}, "
        f"{args.max_pdu}-byte PDUs: {statistics.median(per_instance) * 1e6:.1f} µs per "
        f"instance (median; rounds: {rounds})"
    )
    if args.instructions:
        per = _instructions(args, len(paths))
        print(f"{name}: {per:,.0f} user-space instructions per instance (callgrind)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
