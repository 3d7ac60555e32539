"""How long the sound in a file lasts: WAV, or the PCM audio track of an AVI (AudioLDM's waveform videos).

Plain Python: this module never imports bpy. It reads only RIFF headers and chunk sizes (never trusting them beyond
the file's own length) and returns None for anything else: the duration is informative, never required.
"""

from __future__ import annotations

import struct
import wave
from pathlib import Path

#: Chunks we walk before giving up on a file that is not laid out as expected.
MAX_CHUNKS = 1_000_000


def audio_duration(path: str | Path) -> float | None:
    """Seconds of audio in a WAV or an AVI with a PCM track; None when the file has none we can measure."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            head = fh.read(12)
        if head[:4] != b"RIFF":
            return None
        if head[8:12] == b"WAVE":
            with wave.open(str(path), "rb") as w:
                return w.getnframes() / float(w.getframerate())
        if head[8:12] == b"AVI ":
            return _avi_audio_seconds(path)
    except (OSError, EOFError, wave.Error, struct.error, ValueError):
        return None
    return None


def _avi_audio_seconds(path: Path) -> float | None:
    """Bytes in the audio stream's data chunks over its byte rate (from the stream's ``strf`` WAVEFORMATEX)."""
    size = path.stat().st_size
    byte_rate = 0
    audio_stream: int | None = None
    stream = -1
    audio_bytes = 0
    with path.open("rb") as fh:
        fh.seek(12)
        stack = [size]
        for _ in range(MAX_CHUNKS):
            pos = fh.tell()
            while stack and pos >= stack[-1]:
                stack.pop()
            if not stack or pos + 8 > size:
                break
            header = fh.read(8)
            tag, length = header[:4], struct.unpack("<I", header[4:])[0]
            end = min(pos + 8 + length + (length & 1), stack[-1])
            if tag == b"LIST":
                kind = fh.read(4)
                if kind == b"strl":
                    stream += 1
                stack.append(end)
                continue
            if tag == b"strh" and length >= 8:
                if fh.read(4) == b"auds":
                    audio_stream = stream
            elif tag == b"strf" and stream == audio_stream and length >= 12:
                fmt = fh.read(12)
                byte_rate = struct.unpack("<I", fmt[8:12])[0]
            elif audio_stream is not None and tag == f"{audio_stream:02d}wb".encode():
                audio_bytes += min(length, max(0, size - pos - 8))
            fh.seek(end)
    if audio_stream is None or byte_rate <= 0:
        return None
    return audio_bytes / byte_rate
