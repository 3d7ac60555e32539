"""The Applio stand-in as a test peer: a real Gradio app in its own process (shared by tests/rvc and tests/blender)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class AppProcess:
    """``python -m movie_director.clients.rvc.standin_applio --port P`` in its own process; ready once it prints its
    URL."""

    def __init__(self, *args: str) -> None:
        port = free_port()
        env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "movie_director.clients.rvc.standin_applio", "--port", str(port), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        self.url = ""
        self.root = Path()
        self.output: list[str] = []
        self._said = threading.Condition()
        ready = threading.Event()

        def read() -> None:
            assert self.proc.stdout is not None
            for text in self.proc.stdout:
                with self._said:
                    self.output.append(text)
                    self._said.notify_all()
                if not self.url and text.startswith("http://"):
                    self.url = text.strip()
                    ready.set()
            ready.set()

        self._reader = threading.Thread(target=read, name="applio-standin-output", daemon=True)
        self._reader.start()
        if not ready.wait(60) or not self.url:
            self.stop()
            raise RuntimeError("the Applio stand-in did not start:\n" + "".join(self.output[-30:]))

    def wait_for(self, text: str, timeout: float) -> bool:
        """Whether the app prints a line containing ``text`` within ``timeout`` seconds."""
        with self._said:
            return self._said.wait_for(lambda: any(text in line for line in self.output), timeout)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._reader.join(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
