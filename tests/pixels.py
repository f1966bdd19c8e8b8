"""Read a PNG's pixels with the standard library only (the suite has no imaging dependency): enough for the
8-bit RGB/RGBA, non-interlaced images a headless Chromium writes."""

from __future__ import annotations

import struct
import zlib
from collections import Counter
from pathlib import Path


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else b if pb <= pc else c


def read_png(path: str | Path) -> tuple[int, int, int, bytes]:
    """``(width, height, channels, raw bytes row-major)`` of an 8-bit RGB (3) or RGBA (4) PNG."""
    data = Path(path).read_bytes()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path}: not a PNG")
    pos, idat, header = 8, [], None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        pos += 12 + length
    width, height, depth, color, _, _, interlace = header
    if depth != 8 or color not in (2, 6) or interlace:
        raise ValueError(f"{path}: only 8-bit RGB/RGBA non-interlaced PNGs are read (got depth {depth}, type {color})")
    ch = 3 if color == 2 else 4
    raw, stride = zlib.decompress(b"".join(idat)), width * ch
    out, prev = bytearray(), bytearray(stride)
    for y in range(height):
        kind, row = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            left = row[i - ch] if i >= ch else 0
            up, corner = prev[i], prev[i - ch] if i >= ch else 0
            if kind == 1:
                row[i] = (row[i] + left) & 255
            elif kind == 2:
                row[i] = (row[i] + up) & 255
            elif kind == 3:
                row[i] = (row[i] + (left + up) // 2) & 255
            elif kind == 4:
                row[i] = (row[i] + _paeth(left, up, corner)) & 255
        out += row
        prev = row
    return width, height, ch, bytes(out)


def colour_counts(path: str | Path) -> Counter:
    """How many pixels of each ``(r, g, b)`` colour the PNG holds."""
    width, height, ch, raw = read_png(path)
    return Counter(raw[i : i + 3] for i in range(0, width * height * ch, ch))


def hex_rgb(colour: str) -> bytes:
    """``"#E69F00"`` → ``b"\\xe6\\x9f\\x00"`` (a key of :func:`colour_counts`)."""
    return bytes.fromhex(colour.lstrip("#"))
