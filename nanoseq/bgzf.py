"""BGZF, the block gzip of BAM and ``bgzip`` (SAM/BAM specification, section 4.1), written a block
at a time: each block is a whole gzip member, so a file is readable up to its last complete
block, by every gzip reader as by htslib."""

from __future__ import annotations

import struct
import zlib

EOF = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")  # empty block
MAX_INPUT = 0xFF00  # bytes of input a block holds (htslib's limit, which keeps blocks < 64 KiB)


def blocks(data: bytes, level: int = 6) -> bytes:
    """``data`` as BGZF blocks."""
    out = []
    for start in range(0, len(data), MAX_INPUT):
        chunk = data[start : start + MAX_INPUT]
        deflate = zlib.compressobj(level, zlib.DEFLATED, -15)
        compressed = deflate.compress(chunk) + deflate.flush()
        size = len(compressed) + 25  # the whole block's size less 1: 18 header + 8 trailer
        header = struct.pack("<4BI2BH2BHH", 31, 139, 8, 4, 0, 0, 255, 6, 66, 67, 2, size)
        trailer = struct.pack("<II", zlib.crc32(chunk), len(chunk))
        out.append(header + compressed + trailer)
    return b"".join(out)
