"""Small, dependency-free media writers for the stand-in servers: WAV audio and MJPEG AVI video (optionally with a
PCM audio track), both of which Blender's Sequencer loads directly.

Plain Python: this module never imports bpy. Pillow is needed only to encode video frames as JPEG (it is a dev and
stand-in dependency, not one of the extension's). AVI layout follows the OpenDML/Microsoft AVI RIFF spec: ``hdrl``
(``avih`` + one ``strl`` per stream), ``movi`` with ``00dc`` video and ``01wb`` audio chunks, and an ``idx1`` index.
"""

from __future__ import annotations

import io
import math
import struct
import wave
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

SAMPLE_RATE = 44100


def tone(duration_s: float, *, freq: float = 440.0, rate: int = SAMPLE_RATE, volume: float = 0.3) -> bytes:
    """Mono 16-bit PCM of a sine tone with a short fade at both ends (no clicks)."""
    n = max(1, round(duration_s * rate))
    fade = min(n // 2, rate // 100)
    out = bytearray()
    for i in range(n):
        env = min(1.0, i / fade if fade else 1.0, (n - 1 - i) / fade if fade else 1.0)
        out += struct.pack("<h", int(32767 * volume * env * math.sin(2 * math.pi * freq * i / rate)))
    return bytes(out)


def write_wav(path: str | Path, pcm: bytes, *, rate: int = SAMPLE_RATE, channels: int = 1) -> Path:
    """16-bit PCM WAV."""
    path = Path(path)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)
    return path


def read_wav(path: str | Path) -> tuple[bytes, int, int]:
    """(pcm, rate, channels) of a 16-bit WAV."""
    with wave.open(str(path), "rb") as r:
        if r.getsampwidth() != 2:
            raise ValueError("only 16-bit WAV is supported")
        return r.readframes(r.getnframes()), r.getframerate(), r.getnchannels()


def wav_duration(path: str | Path) -> float:
    with wave.open(str(path), "rb") as r:
        return r.getnframes() / r.getframerate()


def _chunk(tag: bytes, data: bytes) -> bytes:
    pad = b"\0" if len(data) % 2 else b""
    return tag + struct.pack("<I", len(data)) + data + pad


def _list(kind: bytes, data: bytes) -> bytes:
    return _chunk(b"LIST", kind + data)


def write_avi(
    path: str | Path,
    frames: Iterable[Any],
    *,
    fps: int,
    size: tuple[int, int],
    audio: bytes | None = None,
    audio_rate: int = SAMPLE_RATE,
    quality: int = 80,
) -> Path:
    """An MJPEG AVI of ``frames`` (PIL images of ``size``) at ``fps``, with optional mono 16-bit PCM ``audio``."""
    width, height = size
    jpegs = []
    for frame in frames:
        buf = io.BytesIO()
        frame.convert("RGB").save(buf, "JPEG", quality=quality)
        jpegs.append(buf.getvalue())
    if not jpegs:
        raise ValueError("a video needs at least one frame")
    n = len(jpegs)
    per_frame_audio = b""
    audio_chunks: list[bytes] = []
    if audio is not None:
        # Interleave: one audio chunk per video frame, sized to the frame's share of the samples.
        total = len(audio) // 2
        for i in range(n):
            start, end = total * i // n, total * (i + 1) // n
            audio_chunks.append(audio[start * 2 : end * 2])
        per_frame_audio = audio_chunks[0]
    max_chunk = max(len(j) for j in jpegs) + len(per_frame_audio) + 16

    streams = 2 if audio is not None else 1
    avih = struct.pack(
        "<IIIIIIIIII4I",
        round(1_000_000 / fps),  # microseconds per frame
        max_chunk * fps,  # max bytes per second
        0,
        0x10,  # AVIF_HASINDEX
        n,
        0,
        streams,
        max_chunk,
        width,
        height,
        0,
        0,
        0,
        0,
    )
    vids_strh = struct.pack(
        "<4s4sIHHIIIIIIIIhhhh",
        b"vids",
        b"MJPG",
        0,
        0,
        0,
        0,
        1,
        fps,
        0,
        n,
        max_chunk,
        0xFFFFFFFF,
        0,
        0,
        0,
        width,
        height,
    )
    vids_strf = struct.pack("<IiiHH4sIiiII", 40, width, height, 1, 24, b"MJPG", width * height * 3, 0, 0, 0, 0)
    strls = _list(b"strl", _chunk(b"strh", vids_strh) + _chunk(b"strf", vids_strf))
    if audio is not None:
        samples = len(audio) // 2
        auds_strh = struct.pack(
            "<4s4sIHHIIIIIIIIhhhh", b"auds", b"\0\0\0\0", 0, 0, 0, 0, 1, audio_rate, 0, samples, 0, 0xFFFFFFFF, 2, 0,
            0, 0, 0,
        )  # fmt: skip
        auds_strf = struct.pack("<HHIIHHH", 1, 1, audio_rate, audio_rate * 2, 2, 16, 0)
        strls += _list(b"strl", _chunk(b"strh", auds_strh) + _chunk(b"strf", auds_strf))
    hdrl = _list(b"hdrl", _chunk(b"avih", avih) + strls)

    movi = bytearray(b"movi")
    index = bytearray()
    for i, jpeg in enumerate(jpegs):
        pieces = [(b"00dc", jpeg)]
        if audio is not None:
            pieces.append((b"01wb", audio_chunks[i]))
        for tag, data in pieces:
            offset = len(movi)
            movi += _chunk(tag, data)
            index += struct.pack("<4sIII", tag, 0x10 if tag == b"00dc" else 0, offset, len(data))
    body = b"AVI " + hdrl + _chunk(b"LIST", bytes(movi)) + _chunk(b"idx1", bytes(index))
    path = Path(path)
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return path


def frames_of(n: int, size: tuple[int, int], draw: Callable[[int], Any]) -> list[Any]:
    """``n`` frames from ``draw(i) -> PIL image`` (a helper for stand-ins)."""
    return [draw(i).resize(size) for i in range(n)]
