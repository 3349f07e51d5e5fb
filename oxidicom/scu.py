"""Sending files: the work behind ``oxidicom send`` and the benchmarks' load generator.

Files are sent as they are (their own transfer syntax, streamed from disk) over
``associations`` parallel associations pulling from one queue. Each association proposes one
presentation context per (SOP class, transfer syntax) pair of its files, at most 128
(PS3.8's limit): files are grouped so that every group fits.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import attrs

from oxidicom.dimse import status as dimse_status
from oxidicom.net.requestor import (
    VERIFICATION,
    AssociationError,
    RequestorConfig,
    associate,
    propose,
)
from oxidicom.part10 import NotPart10Error, Part10Header, read_part10_header
from oxidicom.ul.fsm import State
from oxidicom.ul.items import PresentationContextRQ

MAX_CONTEXTS = 128
_EXPLICIT_LE = "1.2.840.10008.1.2.1"
_IMPLICIT_LE = "1.2.840.10008.1.2"
_MAX_RECONNECTS = 3


@attrs.frozen
class Failure:
    path: str
    reason: str


@attrs.define
class SendSummary:
    instances: int = 0
    """Instances the SCP answered with success or a warning."""
    bytes: int = 0
    """File bytes of those instances."""
    seconds: float = 0.0
    failures: list[Failure] = attrs.Factory(list)
    skipped: list[Failure] = attrs.Factory(list)
    """Files found in folders that are not DICOM Part 10 files."""

    @property
    def megabytes_per_second(self) -> float:
        return self.bytes / 1e6 / self.seconds if self.seconds > 0 else 0.0


def find_files(paths: Iterable[str | os.PathLike[str]]) -> Iterator[tuple[Path, bool]]:
    """Every file under ``paths``, with whether it was named explicitly (not found in a
    folder); folders are walked recursively in name order."""
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for folder, dirs, files in os.walk(path):
                dirs.sort()
                for name in sorted(files):
                    yield Path(folder, name), False
        else:
            yield path, True


def read_headers(
    paths: Iterable[str | os.PathLike[str]], summary: SendSummary
) -> list[Part10Header]:
    headers: list[Part10Header] = []
    for path, explicit in find_files(paths):
        try:
            headers.append(read_part10_header(path))
        except NotPart10Error as error:
            (summary.failures if explicit else summary.skipped).append(
                Failure(str(path), str(error))
            )
        except OSError as error:
            summary.failures.append(Failure(str(path), error.strerror or str(error)))
    return headers


def group_by_contexts(headers: Sequence[Part10Header]) -> list[list[Part10Header]]:
    """Split files into groups of at most 127 (SOP class, transfer syntax) pairs (one context
    is kept for Verification)."""
    groups: list[list[Part10Header]] = []
    pairs_of_group: list[set[tuple[str, str]]] = []
    for header in sorted(headers, key=lambda h: (h.sop_class_uid, h.transfer_syntax_uid)):
        pair = (header.sop_class_uid, header.transfer_syntax_uid)
        if not groups or (
            pair not in pairs_of_group[-1] and len(pairs_of_group[-1]) >= MAX_CONTEXTS - 1
        ):
            groups.append([])
            pairs_of_group.append(set())
        groups[-1].append(header)
        pairs_of_group[-1].add(pair)
    # Within a group, send in the order the files were given.
    order = {id(header): index for index, header in enumerate(headers)}
    return [sorted(group, key=lambda h: order[id(h)]) for group in groups]


def contexts_for(headers: Sequence[Part10Header]) -> list[tuple[str, list[str]]]:
    """Verification, then each (SOP class, transfer syntax) pair as its own context."""
    pairs = sorted({(h.sop_class_uid, h.transfer_syntax_uid) for h in headers})
    return [(VERIFICATION, [_EXPLICIT_LE, _IMPLICIT_LE])] + [(a, [t]) for a, t in pairs]


async def send_files(
    host: str,
    port: int,
    paths: Sequence[str | os.PathLike[str]],
    config: RequestorConfig,
    *,
    associations: int = 1,
    on_progress: Callable[[SendSummary, int], None] | None = None,
) -> SendSummary:
    """Send every DICOM file under ``paths``; ``on_progress(summary, total)`` after each."""
    summary = SendSummary()
    headers = read_headers(paths, summary)
    total = len(headers)
    started = time.perf_counter()
    for group in group_by_contexts(headers):
        queue: asyncio.Queue[Part10Header] = asyncio.Queue()
        for header in group:
            queue.put_nowait(header)
        contexts = propose(contexts_for(group))
        workers = [
            _worker(host, port, contexts, config, queue, summary, total, on_progress)
            for _ in range(max(1, min(associations, len(group))))
        ]
        await asyncio.gather(*workers)
    summary.seconds = time.perf_counter() - started
    return summary


async def _worker(  # noqa: PLR0917 - private, one call site
    host: str,
    port: int,
    contexts: Sequence[PresentationContextRQ],
    config: RequestorConfig,
    queue: asyncio.Queue[Part10Header],
    summary: SendSummary,
    total: int,
    on_progress: Callable[[SendSummary, int], None] | None,
) -> None:
    failed_connections = 0
    while not queue.empty():
        try:
            association = await associate(host, port, contexts, config)
        except AssociationError as error:
            failed_connections += 1
            if failed_connections >= _MAX_RECONNECTS:
                while not queue.empty():
                    summary.failures.append(Failure(queue.get_nowait().path, str(error)))
                return
            continue
        failed_connections = 0
        try:
            while not queue.empty():
                header = queue.get_nowait()
                try:
                    result = await association.store_file(header)
                except AssociationError as error:
                    summary.failures.append(Failure(header.path, str(error)))
                    break  # reconnect for the rest
                except OSError as error:
                    summary.failures.append(Failure(header.path, str(error)))
                    continue
                category, meaning = dimse_status.describe(result.status)
                if category is dimse_status.Category.FAILURE:
                    reason = f"0x{result.status:04X} {meaning}"
                    if result.error_comment:
                        reason += f": {result.error_comment}"
                    summary.failures.append(Failure(header.path, reason))
                else:
                    summary.instances += 1
                    summary.bytes += header.file_size
                if on_progress is not None:
                    on_progress(summary, total)
        finally:
            if association.association.state is State.STA6:
                await association.release()
            else:
                association.abort()


async def echo(host: str, port: int, config: RequestorConfig) -> int:
    """One C-ECHO over a new association; the response status."""
    contexts = propose([(VERIFICATION, [_EXPLICIT_LE, _IMPLICIT_LE])])
    async with await associate(host, port, contexts, config) as association:
        return await association.echo()
