"""eSpeak NG through ctypes: offline, model-free speech for the speech stand-in (never shipped in the extension).

Plain Python: this module never imports bpy. The library and its data come from the ``espeakng-loader`` wheel (a dev
dependency; wheels for Linux, Windows and macOS on x86-64 and arm64), so nothing is downloaded at run time. eSpeak NG
keeps global state: one synthesis at a time, under a lock. Its API (``speak_lib.h``): initialise for synchronous
output, register a callback that receives 16-bit mono samples, pick a voice, set rate and pitch, synthesise.
"""

from __future__ import annotations

import ctypes
import threading
from typing import Any

AUDIO_OUTPUT_SYNCHRONOUS = 2
POS_CHARACTER = 1
ESPEAK_CHARS_UTF8 = 1
ESPEAK_RATE, ESPEAK_PITCH = 1, 3
#: eSpeak's words per minute at speed 1.0 (its own default is 175).
BASE_RATE = 165


class EspeakError(RuntimeError):
    """eSpeak NG is missing or refused the request."""


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


class Espeak:
    """One loaded eSpeak NG library. ``speak`` returns 16-bit mono PCM bytes at :attr:`rate` Hz."""

    _lock = threading.Lock()

    def __init__(self) -> None:
        try:
            import espeakng_loader
        except ImportError as exc:
            raise EspeakError("eSpeak NG is not installed (pip install espeakng-loader)") from exc
        try:
            self.lib: Any = ctypes.CDLL(espeakng_loader.get_library_path())
        except OSError as exc:
            raise EspeakError(f"eSpeak NG's library did not load: {exc}") from exc
        data = espeakng_loader.get_data_path().encode()
        self.rate = int(self.lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, ctypes.c_char_p(data), 0))
        if self.rate <= 0:
            raise EspeakError("eSpeak NG did not initialise (its data folder is missing?)")
        self._chunks: list[bytes] = []
        self._callback = _CALLBACK(self._collect)  # kept referenced: the library calls it later
        self.lib.espeak_SetSynthCallback(self._callback)
        self.lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self.lib.espeak_Synth.argtypes = [
            ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint, ctypes.c_uint,
            ctypes.c_void_p, ctypes.c_void_p,
        ]  # fmt: skip

    def _collect(self, wav: Any, count: int, events: Any) -> int:
        if wav and count > 0:
            self._chunks.append(ctypes.string_at(wav, count * 2))
        return 0

    def speak(self, text: str, voice: str = "en-us", *, speed: float = 1.0, pitch: int = 50) -> bytes:
        """Speak ``text`` with eSpeak's ``voice`` (e.g. ``en-us``, ``en-gb+m3``); raises EspeakError if unknown."""
        encoded = text.encode("utf-8") + b"\0"
        with self._lock:
            if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise EspeakError(f"eSpeak NG has no voice {voice!r}")
            self.lib.espeak_SetParameter(ESPEAK_RATE, max(80, min(450, round(BASE_RATE * speed))), 0)
            self.lib.espeak_SetParameter(ESPEAK_PITCH, max(0, min(99, pitch)), 0)
            self._chunks = []
            status = self.lib.espeak_Synth(encoded, len(encoded), 0, POS_CHARACTER, 0, ESPEAK_CHARS_UTF8, None, None)
            if status != 0:
                raise EspeakError(f"eSpeak NG could not speak (status {status})")
            self.lib.espeak_Synchronize()
            return b"".join(self._chunks)


_engine: Espeak | None = None


def engine() -> Espeak:
    """The process's eSpeak NG (loaded once); EspeakError when it cannot be loaded."""
    global _engine
    if _engine is None:
        _engine = Espeak()
    return _engine
