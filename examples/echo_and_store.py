"""A tiny SCU: C-ECHO a peer, then C-STORE one Part 10 file to it, as the file is.

python examples/echo_and_store.py HOST PORT FILE [CALLED_AE]
"""

import asyncio
import sys

from oxidicom.dimse import VERIFICATION_SOP_CLASS, status
from oxidicom.net import RequestorConfig, associate, propose, read_part10_header

IMPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2"


async def main(host: str, port: int, path: str, called: str) -> int:
    header = read_part10_header(path)  # SOP class, instance, transfer syntax, data offset
    contexts = propose(
        [
            (VERIFICATION_SOP_CLASS, [IMPLICIT_VR_LITTLE_ENDIAN]),
            (header.sop_class_uid, [header.transfer_syntax_uid]),
        ]
    )
    config = RequestorConfig(calling_ae_title="ECHO-AND-STORE", called_ae_title=called)
    async with await associate(host, port, contexts, config) as association:
        echoed = await association.echo()
        print(f"C-ECHO: 0x{echoed:04X}")
        stored = await association.store_file(header)  # streamed from disk
        print(f"C-STORE {header.sop_instance_uid}: 0x{stored.status:04X}")
    ok = status.category(stored.status) is not status.Category.FAILURE
    return 0 if echoed == 0 and ok else 1


if __name__ == "__main__":
    if len(sys.argv) not in (4, 5):
        sys.exit(__doc__)
    called_ae = sys.argv[4] if len(sys.argv) == 5 else "ANY-SCP"
    sys.exit(asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3], called_ae)))
