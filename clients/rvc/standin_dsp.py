"""The stand-ins' "voice conversion": a real, audible transform of a recording, cheap enough for tests.

Plain Python: this module never imports bpy (it needs numpy, as the stand-ins do; the client never imports it).
What RVC does in shape, not in quality: the output is mono at the voice's own rate (RVC v2 voices are 40 kHz),
exactly as long as the input, pitch-shifted by ``pitch`` semitones (granular overlap-add, so the length stays), and
coloured per voice (soft saturation adds harmonics, a moving-average low-pass whose width depends on the voice)
mixed in by ``index_rate``.
"""

from __future__ import annotations

import io
import wave
import zlib

import numpy as np

#: The rate RVC v2 "40k" voices answer at.
VOICE_RATE = 40000


def decode_wav(data: bytes) -> tuple[np.ndarray, int]:
    """(mono float samples in [-1, 1], rate) of an 8/16/24/32-bit PCM WAV; ValueError for anything else."""
    try:
        with wave.open(io.BytesIO(data), "rb") as r:
            width, channels, rate = r.getsampwidth(), r.getnchannels(), r.getframerate()
            raw = r.readframes(r.getnframes())
    except (wave.Error, EOFError) as exc:
        raise ValueError(f"cannot read the audio: {exc}") from None
    if width == 1:
        samples = (np.frombuffer(raw, np.uint8).astype(np.float32) - 128.0) / 128.0
    elif width == 2:
        samples = np.frombuffer(raw, "<i2").astype(np.float32) / 32768.0
    elif width == 3:
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
        ints = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        samples = np.where(ints >= 1 << 23, ints - (1 << 24), ints).astype(np.float32) / float(1 << 23)
    elif width == 4:
        samples = np.frombuffer(raw, "<i4").astype(np.float32) / float(1 << 31)
    else:
        raise ValueError(f"unsupported sample width {width}")
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1)
    if not len(samples):
        raise ValueError("the audio is empty")
    return samples, rate


def encode_wav(samples: np.ndarray, rate: int) -> bytes:
    """Mono 16-bit PCM WAV bytes."""
    pcm = (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)
    return buf.getvalue()


def pitch_shift(x: np.ndarray, rate: int, semitones: float) -> np.ndarray:
    """Shift pitch by ``semitones`` keeping the length: Hann-windowed grains read at the pitch ratio, overlap-added."""
    if semitones == 0 or len(x) < 8:
        return x.copy()
    ratio = 2.0 ** (semitones / 12.0)
    grain = max(8, int(0.04 * rate))
    hop = grain // 2
    window = np.hanning(grain).astype(np.float32)
    out = np.zeros(len(x) + grain, np.float32)
    norm = np.zeros(len(x) + grain, np.float32)
    offsets = (np.arange(grain) - grain / 2.0) * ratio + grain / 2.0
    positions = np.arange(len(x), dtype=np.float32)
    for start in range(0, len(x), hop):
        read = np.clip(start + offsets, 0, len(x) - 1)
        out[start : start + grain] += np.interp(read, positions, x).astype(np.float32) * window
        norm[start : start + grain] += window
    return out[: len(x)] / np.maximum(norm[: len(x)], 1e-3)


def resample(x: np.ndarray, rate: int, new_rate: int) -> np.ndarray:
    """Linear-interpolation resampling that keeps the duration (to the nearest sample)."""
    if rate == new_rate:
        return x
    n = max(1, round(len(x) * new_rate / rate))
    return np.interp(np.arange(n) * (rate / new_rate), np.arange(len(x)), x).astype(np.float32)


def convert(
    data: bytes,
    voice: str,
    *,
    pitch: float = 0.0,
    index_rate: float = 0.5,
    rms_mix_rate: float = 1.0,
    out_rate: int = VOICE_RATE,
) -> bytes:
    """Turn WAV bytes into ``voice`` (see the module docstring); returns WAV bytes at ``out_rate``."""
    x, rate = decode_wav(data)
    y = pitch_shift(x, rate, pitch)
    taps = 2 + zlib.crc32(voice.encode("utf-8")) % 11  # each voice has its own brightness
    coloured = np.convolve(np.tanh(2.0 * y), np.ones(taps, np.float32) / taps, mode="same")
    mix = 0.5 + 0.5 * float(index_rate)
    voiced = (1.0 - mix) * y + mix * coloured
    # rms_mix_rate 1 keeps the converted loudness; 0 follows the input's (as RVC's volume envelope mix does).
    ratio = np.sqrt(np.mean(x**2) + 1e-12) / np.sqrt(np.mean(voiced**2) + 1e-12)
    voiced = voiced * (rms_mix_rate + (1.0 - rms_mix_rate) * ratio)
    return encode_wav(resample(voiced.astype(np.float32), rate, out_rate), out_rate)
