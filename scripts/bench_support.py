"""Shared by the benchmark sections and the soak script."""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def emulator_process() -> Iterator[str]:
    """The emulator in its own process, as a real server is: in this process it would compete for the GIL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "movie_director.clients.comfyui.emulator", "--port", "0", "--step-delay", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"(http://\S+)", line)
        if not match:
            raise RuntimeError(f"the emulator did not start: {line!r}")
        yield match.group(1)
    finally:
        proc.terminate()
        proc.wait(10)
