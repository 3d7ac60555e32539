"""Shared by the benchmark sections and the soak script."""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def server_process(argv: list[str], env: dict[str, str] | None = None) -> Iterator[str]:
    """A server in its own process, as a real server is (in this process it would compete for the GIL); yields the
    URL it prints on its first line of output."""
    proc = subprocess.Popen([sys.executable, *argv], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"(http://\S+)", line)
        if not match:
            raise RuntimeError(f"{argv} did not start: {line!r}")
        yield match.group(1).rstrip("/")
    finally:
        proc.terminate()
        proc.wait(10)


def emulator_process() -> contextlib.AbstractContextManager[str]:
    """The ComfyUI emulator with no delay per step."""
    return server_process(["-m", "movie_director.clients.comfyui.emulator", "--port", "0", "--step-delay", "0"])
