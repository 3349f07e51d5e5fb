"""A minimal storage SCP: each instance received becomes a Part 10 file in one folder.

python examples/flat_storage_scp.py OUTPUT_DIR [PORT [HOST]]
"""

import asyncio
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from oxidicom import dimse, net, ul
from oxidicom.part10 import encode_part10_header, standard_transfer_syntaxes

POLICY = ul.AcceptorPolicy("FLAT-SCP", standard_transfer_syntaxes(), None, "2.25.314159")


class FileSink:  # a StoreSink: a hidden temporary file, renamed into place once complete
    def __init__(self, path: Path, header: bytes) -> None:
        self.path = path  # the file is open until finish() or abort(), so no `with`
        self.file = tempfile.NamedTemporaryFile(dir=path.parent, prefix=".", delete=False)  # noqa: SIM115
        self.file.write(header)

    def write(self, chunks: Sequence[memoryview]) -> None:
        self.file.writelines(chunks)

    def finish(self) -> net.StoreResult:
        self.file.close()
        os.replace(self.file.name, self.path)  # readers see the whole instance or none of it
        return net.StoreResult()  # 0x0000 Success

    def abort(self) -> None:  # an earlier complete copy of the instance stays
        self.file.close()
        os.unlink(self.file.name)


class FlatStorage:  # the Application, and the AssociationHandler of every association
    def __init__(self, folder: Path, calling: str = "") -> None:
        self.folder, self.calling = folder, calling

    def connection_allowed(self, peer: net.Peer) -> bool:
        return True

    def negotiate(
        self, request: ul.AAssociateRQ, peer: net.Peer
    ) -> ul.AAssociateAC | ul.AAssociateRJ:
        return ul.negotiate(request, POLICY)  # any SOP class, any transfer syntax we can store

    def open(self, association: net.AssociationContext) -> "FlatStorage":
        return FlatStorage(self.folder, association.calling_ae_title)

    def on_echo(self, request: dimse.CEchoRQ) -> int:
        return 0x0000

    def on_store(self, request: dimse.CStoreRQ, context: ul.AcceptedContext) -> FileSink:
        uid = request.affected_sop_instance_uid
        name = "".join(c for c in uid if c.isdigit() or c == ".").strip(".") or "instance"
        header = encode_part10_header(
            sop_class_uid=request.affected_sop_class_uid,
            sop_instance_uid=uid,
            transfer_syntax_uid=context.transfer_syntax,
            source_ae_title=self.calling,
        )
        return FileSink(self.folder / f"{name}.dcm", header)

    def on_end(self, end: net.AssociationEnd) -> None:
        stored = end.stats.instances_stored
        print(f"{self.calling}: {end.outcome.value}, {stored} stored", flush=True)


async def serve(folder: Path, port: int, host: str) -> None:
    config = net.ServerConfig(host=host, port=port)
    async with net.DicomServer(FlatStorage(folder), config) as server:
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
