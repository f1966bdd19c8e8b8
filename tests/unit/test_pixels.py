"""The PNG reader the screenshot test relies on, on images written by zlib here with every row filter."""

from __future__ import annotations

import struct
import zlib

import pytest
from pixels import colour_counts, hex_rgb, read_png


def _png(tmp_path, rows: list[tuple[int, bytes]], width: int, ch: int):
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, len(rows), 8, 2 if ch == 3 else 6, 0, 0, 0)
    raw = b"".join(bytes([f]) + r for f, r in rows)
    path = tmp_path / "t.png"
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    )
    return path


def test_unfiltered_and_filtered_rows_decode_to_the_same_pixels(tmp_path):
    a, b = bytes([230, 159, 0]), bytes([86, 180, 233])
    row0 = a + b  # two pixels
    # row 1 = b a, stored with the "sub" filter (1): each byte minus the byte one pixel to its left
    row1 = b + a
    sub = bytes(row1[i] - (row1[i - 3] if i >= 3 else 0) & 255 for i in range(6))
    # row 2 = a a, stored with "up" (2): minus the byte above (row 1)
    row2 = a + a
    up = bytes((row2[i] - row1[i]) & 255 for i in range(6))
    path = _png(tmp_path, [(0, row0), (1, sub), (2, up)], width=2, ch=3)
    width, height, ch, raw = read_png(path)
    assert (width, height, ch) == (2, 3, 3) and raw == row0 + row1 + row2
    counts = colour_counts(path)
    assert counts[hex_rgb("#E69F00")] == 4 and counts[hex_rgb("#56B4E9")] == 2


def test_average_filter_and_a_file_that_is_no_png(tmp_path):
    row0 = bytes([10, 20, 30, 255, 40, 50, 60, 255])
    row1 = bytes([12, 22, 32, 255, 44, 54, 64, 255])
    avg = bytes((row1[i] - ((row1[i - 4] if i >= 4 else 0) + row0[i]) // 2) & 255 for i in range(8))
    path = _png(tmp_path, [(0, row0), (3, avg)], width=2, ch=4)
    assert read_png(path)[3] == row0 + row1
    with pytest.raises(ValueError, match="not a PNG"):
        (tmp_path / "x.png").write_bytes(b"GIF89a")
        read_png(tmp_path / "x.png")
