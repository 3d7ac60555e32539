"""Real Gradio apps for tests: each runs in its own process on a free loopback port; shared apps live for the session.

A stand-in prints its URL on stdout once it serves (``python -m movie_director.clients.audioldm.standin --port P``).
Apps started together boot in parallel (a Gradio process needs several seconds to import and start). Every process
is terminated at the end (session fixtures call :func:`stop_shared` at the session's end; an ``atexit`` hook is the
safety net).
"""

from __future__ import annotations

import atexit
import os
import selectors
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PYTHON = sys.executable
ENV = {
    "GRADIO_ANALYTICS_ENABLED": "False",
    "HF_HUB_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "GRADIO_SERVER_NAME": "127.0.0.1",
    "NO_PROXY": "127.0.0.1,localhost",
    "no_proxy": "127.0.0.1,localhost",
    "PYTHONDONTWRITEBYTECODE": "1",
}
# The test process itself talks only to loopback apps too.
os.environ.update(ENV)
STARTUP_TIMEOUT = 90.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class GradioApp:
    """One app process. ``argv`` is the command after the Python executable; ``{port}`` is replaced."""

    def __init__(self, name: str, argv: list[str]) -> None:
        self.name = name
        self.port = free_port()
        self.argv = [a.replace("{port}", str(self.port)) for a in argv]
        self.url = ""
        self.proc: subprocess.Popen[bytes] | None = None
        self._log = tempfile.NamedTemporaryFile(prefix=f"md-{name}-", suffix=".log", delete=False)  # noqa: SIM115

    def spawn(self) -> GradioApp:
        env = dict(os.environ, **ENV)
        self.proc = subprocess.Popen(
            [PYTHON, *self.argv], stdout=subprocess.PIPE, stderr=self._log, env=env, cwd=tempfile.gettempdir()
        )
        return self

    def wait_ready(self, timeout: float = STARTUP_TIMEOUT) -> GradioApp:
        """Read stdout until the app prints its URL (a deadline, never a guess)."""
        assert self.proc is not None and self.proc.stdout is not None
        end = time.monotonic() + timeout
        buffer = b""
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            while not self.url:
                left = end - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    self.stop()
                    raise RuntimeError(f"{self.name} did not start: {self.log()[-2000:]}")
                if not sel.select(min(left, 0.5)):
                    continue
                chunk = os.read(self.proc.stdout.fileno(), 4096)
                buffer += chunk
                for line in buffer.decode("utf-8", "replace").splitlines():
                    if line.startswith("http://"):
                        self.url = line.strip().rstrip("/")
        return self

    def start(self) -> GradioApp:
        return self.spawn().wait_ready()

    def log(self) -> str:
        return Path(self._log.name).read_text("utf-8", "replace")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
            if proc.stdout is not None:
                proc.stdout.close()
        if not self._log.closed:
            self._log.close()
            Path(self._log.name).unlink(missing_ok=True)

    def kill(self) -> None:
        """The server vanishes at once (a crash, a pulled cable)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


def start_all(apps: list[GradioApp]) -> list[GradioApp]:
    """Spawn every app first, then wait for each: they boot in parallel."""
    for app in apps:
        app.spawn()
    try:
        for app in apps:
            app.wait_ready()
    except BaseException:
        for app in apps:
            app.stop()
        raise
    return apps


_shared: dict[str, GradioApp] = {}


def _alive(name: str) -> bool:
    app = _shared.get(name)
    return app is not None and app.proc is not None and app.proc.poll() is None


def shared_apps(specs: dict[str, list[str]]) -> dict[str, GradioApp]:
    """The session's single instance of each app (shared by every test folder); missing ones boot in parallel."""
    for app in start_all([GradioApp(name, argv) for name, argv in specs.items() if not _alive(name)]):
        _shared[app.name] = app
    return {name: _shared[name] for name in specs}


def stop_shared(name: str | None = None) -> None:
    for key in [name] if name else list(_shared):
        app = _shared.pop(key, None) if key else None
        if app is not None:
            app.stop()


atexit.register(stop_shared)

AUDIOLDM = ["-m", "movie_director.clients.audioldm.standin", "--port", "{port}", "--step-delay", "0.01"]
WAN2GP = ["-m", "movie_director.clients.wan2gp.standin_gradio", "--port", "{port}"]
