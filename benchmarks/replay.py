"""The replay sender: every association's bytes built before the push, then sent by sendfile.

Why it exists: on a 2-core machine, storescu or our own SCU needs most of a core to push the
4 KB set, so a receiver with two worker processes finds no second core to run on, and what
the receiver alone can do is hidden behind the sender's cost. The replay sender moves all
of the sender's user-space work out of the timed push: before it, each share of the set is
turned into the exact PDU stream oxidicom's own SCU would send (A-ASSOCIATE-RQ, then per
file the C-STORE-RQ and the data set in fragments of the receiver's maximum length, then
A-RELEASE-RQ), written to a file once and cached; during it, one process
(:mod:`benchmarks.replayer`) writes each share's file to its own connection with
``sendfile`` and checks the answers after the receiver has closed. With ``--cpu-quota``
(:mod:`benchmarks.cpuquota`) it makes the multi-core target measurable here.

What it is not: a conforming SCU. It sends every request without waiting for the previous
response, and the association before it is accepted. Every receiver measured here reads
one PDU at a time in order, so it sees the same byte stream as from a patient SCU, only
without the pauses; a receiver that rejected the association or a context would answer with
fewer successes and the replay fails. The streams assume that every proposed context is
accepted with its only transfer syntax and that the receiver accepts PDUs of ``max_pdu``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import attrs

from benchmarks.receivers import CALLED_AE, project_python
from benchmarks.senders import CALLING_AE, Push
from oxidicom.dimse import CStoreRQ, send_message
from oxidicom.net.requestor import propose
from oxidicom.part10 import Part10Header, read_part10_header
from oxidicom.scu import contexts_for
from oxidicom.ul import (
    AAssociateAC,
    AAssociateRQ,
    Association,
    AssociationAccepted,
    PresentationContextAC,
    Role,
    UserInformation,
    encode_pdu,
)

STREAM_ROOT = Path(__file__).resolve().parent / "out" / "replay"
_FORMAT = "1"  # bump when the stream layout changes: old caches are then ignored


def build_stream(headers: Sequence[Part10Header], max_pdu: int, target: Path) -> None:
    """Write the bytes of one association that stores ``headers`` to ``target``."""
    contexts = propose(contexts_for(headers))
    association = Association(Role.REQUESTOR)
    request = AAssociateRQ(
        called_ae_title=CALLED_AE,
        calling_ae_title=CALLING_AE,
        presentation_contexts=contexts,
        user_information=UserInformation(maximum_length=max_pdu),
    )
    association.request_association(request, 0.0)
    association.connection_made(0.0)
    # The receiver's answer, as assumed: everything accepted, its maximum length max_pdu.
    answer = AAssociateAC(
        called_ae_title=CALLED_AE,
        calling_ae_title=CALLING_AE,
        presentation_contexts=tuple(
            PresentationContextAC(c.context_id, 0, c.transfer_syntaxes[0]) for c in contexts
        ),
        user_information=UserInformation(maximum_length=max_pdu),
    )
    association.receive_data(encode_pdu(answer), 0.0)
    if not isinstance(association.next_event(), AssociationAccepted):
        raise RuntimeError("the requestor did not take the assumed A-ASSOCIATE-AC")  # noqa: TRY004
    context_of = {(c.abstract_syntax, c.transfer_syntaxes[0]): c.context_id for c in contexts}
    fragment = association.max_data_length
    partial = target.with_suffix(".partial")
    with partial.open("wb") as out:
        out.writelines(association.data_to_send())
        for message_id, header in enumerate(headers, start=1):
            context_id = context_of[header.sop_class_uid, header.transfer_syntax_uid]
            request_message = CStoreRQ(message_id, header.sop_class_uid, header.sop_instance_uid)
            send_message(association, context_id, request_message, 0.0)
            with open(header.path, "rb") as source:
                source.seek(header.data_set_offset)
                remaining = header.data_set_size
                while remaining > 0:
                    piece = source.read(min(fragment, remaining))
                    if not piece:
                        raise RuntimeError(f"{header.path} shrank while the stream was built")
                    remaining -= len(piece)
                    association.send_data(context_id, False, remaining == 0, piece, 0.0)
                    out.writelines(association.data_to_send())
        association.release(0.0)
        out.writelines(association.data_to_send())
    partial.replace(target)


def cached_stream(files: Sequence[Path], max_pdu: int, root: Path = STREAM_ROOT) -> Path:
    """The stream for ``files`` at ``max_pdu``, built on first use.

    Keyed by the file names, sizes and modification times, so a regenerated set gets new
    streams.
    """
    key = hashlib.sha256(f"{_FORMAT} {max_pdu}".encode())
    for path in files:
        status = path.stat()
        key.update(f"\n{path} {status.st_size} {status.st_mtime_ns}".encode())
    target = root / f"{key.hexdigest()[:24]}.stream"
    if not target.exists():
        root.mkdir(parents=True, exist_ok=True)
        build_stream([read_part10_header(path) for path in files], max_pdu, target)
    return target


@attrs.frozen
class ReplaySender:
    """One replayer process with ``associations`` connections, each with every N-th file."""

    name: str = "replay"
    root: Path = STREAM_ROOT

    def commands(self, push: Push) -> list[list[str]]:
        count = max(1, min(push.associations, len(push.files)))
        jobs = []
        for index in range(count):
            share = push.files[index::count]
            stream = cached_stream(share, push.max_pdu, self.root)
            jobs.append(f"{os.fspath(stream)}:{len(share)}")
        return [[project_python(), "-m", "benchmarks.replayer", push.host, str(push.port), *jobs]]
