"""Scratch folders for stand-in servers, removed when their process ends.

A stand-in answers every request with a file in a folder of its own (as Gradio apps and Wan2GP do). Left to
``tempfile.mkdtemp`` those folders outlive the process: every test run and every demo would litter the temporary
folder. Here each process gets one parent folder, removed at exit; and :func:`exit_on_sigterm` makes the usual way
to stop a server process (``terminate()``) run that clean-up, which Python's default SIGTERM action skips.
"""

from __future__ import annotations

import atexit
import shutil
import signal
import sys
import tempfile
import threading
from pathlib import Path

_lock = threading.Lock()
_roots: dict[str, Path] = {}


def scratch_root(prefix: str) -> Path:
    """This process's folder for ``prefix`` (created on first use, removed at exit)."""
    with _lock:
        root = _roots.get(prefix)
        if root is None:
            root = _roots[prefix] = Path(tempfile.mkdtemp(prefix=prefix))
            atexit.register(shutil.rmtree, root, ignore_errors=True)
        return root


def scratch_dir(prefix: str) -> Path:
    """A fresh folder for one answer, inside this process's scratch root for ``prefix``."""
    return Path(tempfile.mkdtemp(dir=scratch_root(prefix)))


def exit_on_sigterm() -> None:
    """SIGTERM ends the process as ``sys.exit(0)`` does, so ``finally`` blocks and atexit clean-up run.

    Call it from the main thread of a server's own process, never inside Blender or a test process.
    """
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))


__all__ = ["exit_on_sigterm", "scratch_dir", "scratch_root"]
