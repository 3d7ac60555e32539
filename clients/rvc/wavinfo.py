"""Read a WAV file's header (any PCM or float format) to check that what a server sent is audio, and how long.

Plain Python: this module never imports bpy, nor numpy. The stdlib ``wave`` module refuses float WAVs, which
RVC servers write (scipy's ``wavfile.write`` of float32 audio), so the RIFF chunks are walked here instead.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

#: Chunks we step over before ``fmt``/``data`` (LIST, fact, JUNK, ...), at most this many.
MAX_CHUNKS = 64


@dataclass(frozen=True)
class WavInfo:
    rate: int
    channels: int
    bits: int
    frames: int

    @property
    def duration(self) -> float:
        return self.frames / self.rate


def wav_info(path: str | Path) -> WavInfo:
    """The format and length of a WAV file; ValueError when it is not one (or is damaged)."""
    with open(path, "rb") as fh:
        head = fh.read(12)
        if len(head) < 12 or head[:4] not in (b"RIFF", b"RF64") or head[8:12] != b"WAVE":
            raise ValueError("not a WAV file")
        fmt: tuple[int, int, int, int] | None = None
        for _ in range(MAX_CHUNKS):
            header = fh.read(8)
            if len(header) < 8:
                break
            tag, size = header[:4], struct.unpack("<I", header[4:])[0]
            if tag == b"fmt ":
                body = fh.read(min(size, 64))
                if len(body) < 16:
                    raise ValueError("damaged WAV format chunk")
                _, channels, rate, _, block_align, bits = struct.unpack("<HHIIHH", body[:16])
                fmt = (channels, rate, block_align, bits)
                fh.seek(size - len(body) + (size & 1), 1)
            elif tag == b"data":
                if fmt is None:
                    raise ValueError("WAV data before its format")
                channels, rate, block_align, bits = fmt
                if not channels or not rate or not block_align:
                    raise ValueError("WAV format with zero channels, rate or frame size")
                here = fh.tell()
                available = fh.seek(0, 2) - here
                size = available if size in (0, 0xFFFFFFFF) else min(size, available)
                return WavInfo(rate=rate, channels=channels, bits=bits, frames=size // block_align)
            else:
                fh.seek(size + (size & 1), 1)
        raise ValueError("WAV file without audio data")
