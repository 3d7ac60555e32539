"""Honour the ``.pth`` files that bundled wheels rely on.

Python's ``site`` module runs ``.pth`` files only in the site-packages folders it knows at start-up. Blender adds
the folder where it installs an extension's wheels with a plain ``sys.path.append``, so their ``.pth`` files never
run. One of them matters: on Windows ``mcp`` imports ``pywin32``, whose ``pywin32.pth`` puts ``win32``,
``win32/lib`` and ``Pythonwin`` on ``sys.path`` and registers its DLL folder (``import pywin32_bootstrap``).
"""

from __future__ import annotations

import os
import site
import sys
import threading
from collections.abc import Iterable

#: The ``.pth`` files of bundled wheels that must run before their packages import.
NEEDED = ("pywin32.pth",)

_lock = threading.Lock()
_done: set[str] = set()


def apply_pth_files(names: Iterable[str] = NEEDED) -> list[str]:
    """Run each named ``.pth`` file found in a ``sys.path`` folder, once per process, as ``site`` would.

    Returns the files run by this call. Only the named files run: other wheels' ``.pth`` files stay untouched.
    """
    wanted = tuple(names)
    ran: list[str] = []
    with _lock:
        for folder in list(sys.path):
            for name in wanted:
                path = os.path.join(folder or os.curdir, name)
                if path in _done or not os.path.isfile(path):
                    continue
                _done.add(path)
                site.addpackage(folder, name, None)  # undocumented, but stable from Python 2 to 3.13
                ran.append(path)
    return ran


def prepare_for_mcp() -> None:
    """What the ``mcp`` SDK needs before its first import on this platform (nothing outside Windows)."""
    if sys.platform == "win32":
        apply_pth_files()


__all__ = ["NEEDED", "apply_pth_files", "prepare_for_mcp"]
