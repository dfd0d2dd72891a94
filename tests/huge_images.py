"""Image files that declare a huge size in a valid header but carry almost no pixel data: a reader
that checks the size from the header refuses them by their size; one that decodes first fails
on the missing data (or on memory) instead. Writing a real 40000x30000 image would take seconds
and a gigabyte for nothing the header does not already say."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path


def write_huge_png(path: Path, width: int, height: int) -> Path:
    """An 8-bit grey PNG header of width x height, followed by a token IDAT and IEND."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
    data += chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    path.write_bytes(data)
    return path


def write_huge_tiff(path: Path, width: int, height: int, bits: int = 16) -> Path:
    """A little-endian, uncompressed, one-strip grey TIFF header of width x height at `bits` per
    sample, whose strip points past the end of the file."""
    long, short = 4, 3
    entries = [
        (256, long, width),  # ImageWidth
        (257, long, height),  # ImageLength
        (258, short, bits),  # BitsPerSample
        (259, short, 1),  # Compression: none
        (262, short, 1),  # PhotometricInterpretation: black is zero
        (273, long, 8),  # StripOffsets
        (277, short, 1),  # SamplesPerPixel
        (278, long, height),  # RowsPerStrip
        (279, long, min(width * height * bits // 8, 0xFFFFFFFF)),  # StripByteCounts
    ]
    ifd = struct.pack("<H", len(entries))
    for tag, kind, value in entries:
        packed = struct.pack("<I", value) if kind == long else struct.pack("<HH", value, 0)
        ifd += struct.pack("<HHI", tag, kind, 1) + packed
    path.write_bytes(b"II*\x00" + struct.pack("<I", 8) + ifd + struct.pack("<I", 0))
    return path
