"""Small, deterministic media files standing in for meeting recordings and photos."""

from __future__ import annotations

import io
import math
import struct
import wave
import zlib


def _png(width: int, height: int, seed: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    r, g, b = seed % 256, (seed >> 8) % 256, (seed >> 16) % 256
    raw = b"".join(b"\x00" + bytes((r, g, b)) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def _wav(seconds: float, seed: int) -> bytes:
    rate, freq = 8000, 220 + seed % 440
    frames = b"".join(
        struct.pack("<h", int(8000 * math.sin(2 * math.pi * freq * i / rate)))
        for i in range(int(rate * seconds))
    )
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(frames)
    return buf.getvalue()


def sample_files(seed: int) -> dict[str, bytes]:
    return {
        "meeting-photo.png": _png(32, 24, seed),
        "sales-call-audio.wav": _wav(0.5, seed),
    }
