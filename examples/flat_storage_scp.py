"""A minimal storage SCP: each instance received becomes a Part 10 file in one folder.

python examples/flat_storage_scp.py OUTPUT_DIR [PORT [HOST]]
"""

import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

from oxidicom.dimse import CEchoRQ, CStoreRQ
from oxidicom.net import (
    AssociationContext,
    AssociationEnd,
    DicomServer,
    Peer,
    ServerConfig,
    StoreResult,
)
from oxidicom.storage.filemeta import encode_part10_header
from oxidicom.storage.transfer_syntax import standard_transfer_syntaxes
from oxidicom.ul import (
    AAssociateAC,
    AAssociateRJ,
    AAssociateRQ,
    AcceptedContext,
    AcceptorPolicy,
    negotiate,
)

POLICY = AcceptorPolicy("FLAT-SCP", standard_transfer_syntaxes(), None, "2.25.314159")


class FileSink:  # a StoreSink: one data set, streamed behind its Part 10 header
    def __init__(self, path: Path, header: bytes) -> None:
        self.path, self.file = path, path.open("wb")
        self.file.write(header)

    def write(self, chunks: Sequence[memoryview]) -> None:
        self.file.writelines(chunks)

    def finish(self) -> StoreResult:
        self.file.close()
        return StoreResult()  # 0x0000 Success

    def abort(self) -> None:
        self.file.close()
        self.path.unlink()


class FlatStorage:  # the Application, and the AssociationHandler of every association
    def __init__(self, folder: Path, calling: str = "") -> None:
        self.folder, self.calling = folder, calling

    def connection_allowed(self, peer: Peer) -> bool:
        return True

    def negotiate(self, request: AAssociateRQ, peer: Peer) -> AAssociateAC | AAssociateRJ:
        return negotiate(request, POLICY)  # any SOP class, any transfer syntax we can read

    def open(self, association: AssociationContext) -> "FlatStorage":
        return FlatStorage(self.folder, association.calling_ae_title)

    def on_echo(self, request: CEchoRQ) -> int:
        return 0x0000

    def on_store(self, request: CStoreRQ, context: AcceptedContext) -> FileSink:
        uid = request.affected_sop_instance_uid
        name = "".join(c for c in uid if c.isdigit() or c == ".").strip(".") or "instance"
        header = encode_part10_header(
            sop_class_uid=request.affected_sop_class_uid,
            sop_instance_uid=uid,
            transfer_syntax_uid=context.transfer_syntax,
            source_ae_title=self.calling,
        )
        return FileSink(self.folder / f"{name}.dcm", header)

    def on_end(self, end: AssociationEnd) -> None:
        print(f"{self.calling}: {end.outcome.value}, {end.stats.instances_stored} stored")


async def serve(folder: Path, port: int, host: str) -> None:
    async with DicomServer(FlatStorage(folder), ServerConfig(host=host, port=port)) as server:
        print(f"listening on {host}:{server.port}, writing to {folder}", flush=True)
        await server.serve_forever()


if __name__ == "__main__":
    if not 2 <= len(sys.argv) <= 4:
        sys.exit(__doc__)
    folder = Path(sys.argv[1])
    folder.mkdir(parents=True, exist_ok=True)
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 11112
    host = sys.argv[3] if len(sys.argv) > 3 else "0.0.0.0"  # noqa: S104 - an SCP listens on all
    asyncio.run(serve(folder, port, host))
