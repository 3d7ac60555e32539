"""The audio track of a video as a WAV file, for servers that take audio only (RVC) when another server answered
with a video (AudioLDM's demo app returns a waveform video with its sound).

Plain Python: this module never imports bpy. It uses Blender's own audio library, ``aud`` (Audaspace, built on
FFmpeg), which every Blender ships and which the ``bpy`` module makes importable; outside Blender it says so.
"""

from __future__ import annotations

import importlib
from pathlib import Path

VIDEO_SUFFIXES = (".avi", ".mp4", ".mkv", ".mov", ".webm", ".m4v")


def is_video(path: str | Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def available() -> bool:
    try:
        importlib.import_module("aud")
        return True
    except ImportError:
        return False


def extract_wav(video: str | Path, target: str | Path, *, rate: int = 44100) -> Path:
    """Write ``video``'s sound as 16-bit mono WAV at ``target`` (blocking: run it in a worker thread)."""
    try:
        aud = importlib.import_module("aud")
    except ImportError as exc:
        raise RuntimeError("extracting sound from a video needs Blender's audio library (run inside Blender)") from exc
    target = Path(target)
    sound = aud.Sound(str(video))
    sound.write(
        str(target),
        rate=rate,
        channels=aud.CHANNELS_MONO,
        format=aud.FORMAT_S16,
        container=aud.CONTAINER_WAV,
        codec=aud.CODEC_PCM,
    )
    return target
