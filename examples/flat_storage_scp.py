"""A minimal storage SCP: each instance received becomes a Part 10 file in one folder.

python examples/flat_storage_scp.py OUTPUT_DIR [PORT [HOST]]
"""

import asyncio
import os
import sys

from oxidicom import dimse, net, ul
from oxidicom.part10 import standard_transfer_syntaxes


async def serve(folder: str, port: int, host: str) -> None:
    os.makedirs(folder, exist_ok=True)
    files = net.FilesRoot(folder)  # files appear there complete, or not at all

    def store(association: net.AssociationContext, request: dimse.CStoreRQ,
              context: ul.AcceptedContext) -> net.StoreSink:  # fmt: skip
        uid = request.affected_sop_instance_uid  # the peer's: keep only what a UID may hold
        name = "".join(c for c in uid if c.isdigit() or c == ".").strip(".") or "instance"
        calling = association.calling_ae_title  # -> SourceApplicationEntityTitle
        return net.Part10FileSink(files, f"{name}.dcm", request, context, calling)

    def report(association: net.AssociationContext, end: net.AssociationEnd) -> None:
        stored = end.stats.instances_stored
        print(f"{association.calling_ae_title}: {end.outcome.value}, {stored} stored", flush=True)

    policy = ul.AcceptorPolicy("FLAT-SCP", standard_transfer_syntaxes(), None, "2.25.314159")
    scp = net.StorageSCP(policy, store, on_end=report)  # any SOP class; C-ECHO answered
    async with net.DicomServer(scp, net.ServerConfig(host=host, port=port)) as server:
        print(f"listening on {host}:{server.port}, writing to {folder}", flush=True)
        await server.serve_forever()


if __name__ == "__main__":
    if not 2 <= len(sys.argv) <= 4:
        sys.exit(__doc__)
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 11112
    host = sys.argv[3] if len(sys.argv) > 3 else "0.0.0.0"  # noqa: S104 - an SCP listens on all
    asyncio.run(serve(sys.argv[1], port, host))
