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


def pump_until(rt, predicate, timeout: float = 5.0) -> bool:  # type: ignore[no-untyped-def]
    """Pump the runtime on this thread until ``predicate()`` holds; waits on the runtime's condition, never sleeps."""
    import time

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        rt.pump()
        if predicate():
            return True
        with rt.done_condition:
            rt.done_condition.wait(0.01)
    return bool(predicate())
