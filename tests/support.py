"""Helpers shared by tests (importable because pytest puts tests/ on sys.path)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def thread_names() -> set[str]:
    return {t.name for t in threading.enumerate()}
