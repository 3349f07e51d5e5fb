"""SeaHash, as computed by the Rust ``seahash`` crate's ``hash(&[u8]) -> u64``.

CUBE's series folders end in the first 7 hex digits of the SeaHash of the
SeriesInstanceUID (contract §3), a choice the Rust oxidicom made; this is a pure-Python
implementation of the same function so the folders stay byte-for-byte identical.

The algorithm: four 64-bit lanes start from fixed seeds; the input is read as
little-endian 64-bit words (the last one zero-padded), word ``i`` is XORed into lane
``i % 4`` which is then passed through :func:`diffuse`; the result is ``diffuse`` of the
XOR of the four lanes and the input length.
"""

from __future__ import annotations

import struct

__all__ = ["diffuse", "seahash"]

_MASK64 = (1 << 64) - 1
_MULTIPLIER = 0x6EED0E9DA4D94A4F
_SEEDS = (0x16F11FE89B0D677C, 0xB480A793D8E6C86C, 0x6FE2E5AAF078EBC9, 0x14F994A4C5259381)


def diffuse(x: int) -> int:
    """SeaHash's bijective mixing step (a PCG-style multiply, xor-shift, multiply)."""
    x = (x * _MULTIPLIER) & _MASK64
    x ^= (x >> 32) >> (x >> 60)
    return (x * _MULTIPLIER) & _MASK64


def seahash(data: bytes | bytearray | memoryview) -> int:
    """Return the SeaHash of ``data`` with the crate's default seeds, as an unsigned 64-bit int."""
    view = memoryview(data).cast("B")
    length = len(view)
    whole = length // 8
    lanes = list(_SEEDS)
    for index, word in enumerate(struct.unpack_from(f"<{whole}Q", view)):
        lane = index & 3
        lanes[lane] = diffuse(lanes[lane] ^ word)
    if length % 8:
        lane = whole & 3
        lanes[lane] = diffuse(lanes[lane] ^ int.from_bytes(view[whole * 8 :], "little"))
    return diffuse(lanes[0] ^ lanes[1] ^ lanes[2] ^ lanes[3] ^ length)
