"""Start and stop a real LiteLLM proxy (``litellm[proxy]``, a third-party dev tool) for tests and benchmarks.

It lives in scripts/ on purpose: the shipped extension must not carry a launcher for a development server (the
manifest excludes scripts/ and tests/), and scripts cannot import tests, while tests can import this file
(``tests/llm_support.py`` puts this folder on ``sys.path``). Offline recipe: ``shared/protocols/litellm.md``.

    with LiteLLMProxy([{"model_name": "m", "litellm_params": {"model": "openai/x", "api_key": "sk-x",
                                                             "mock_response": "Hello"}}]) as proxy:
        print(proxy.url, proxy.key)

The proxy runs in its own process group (its workers die with it), on a free port we pick (never 4000: when that is
busy LiteLLM silently moves elsewhere), with a strong random master key (a weak one makes it refuse to start).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

START_TIMEOUT = 90.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def litellm_executable() -> str:
    """The ``litellm`` next to this Python (the project's .venv), else the one on PATH."""
    beside = Path(sys.executable).parent / "litellm"
    if beside.exists():
        return str(beside)
    found = shutil.which("litellm")
    if not found:
        raise RuntimeError("The litellm command is missing: pip install 'litellm[proxy]'")
    return found


class LiteLLMProxy:
    """One proxy process. ``files`` are written beside its config (e.g. a callbacks module it imports)."""

    def __init__(
        self,
        models: list[dict[str, Any]],
        *,
        files: dict[str, str] | None = None,
        litellm_settings: dict[str, Any] | None = None,
        router_settings: dict[str, Any] | None = None,
        env: dict[str, str] | None = None,
        start_timeout: float = START_TIMEOUT,
    ) -> None:
        self.models = models
        self.files = dict(files or {})
        self.litellm_settings = {"num_retries": 0, **(litellm_settings or {})}
        self.router_settings = {"allowed_fails": 0, "cooldown_time": 30, "num_retries": 0, **(router_settings or {})}
        self.extra_env = dict(env or {})
        self.start_timeout = start_timeout
        self.key = "sk-" + secrets.token_urlsafe(32)
        self.workdir = Path(tempfile.mkdtemp(prefix="md-litellm-"))
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "proxy.log"

    def log_text(self, tail: int = 6000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-tail:]
        except OSError:
            return ""

    def write_config(self) -> Path:
        for name, text in self.files.items():
            (self.workdir / name).write_text(text, encoding="utf-8")
        config = {
            "model_list": self.models,
            "router_settings": self.router_settings,
            "litellm_settings": self.litellm_settings,
            "general_settings": {"master_key": "os.environ/LITELLM_MASTER_KEY"},
        }
        path = self.workdir / "config.yaml"
        path.write_text(json.dumps(config, indent=1, ensure_ascii=False), encoding="utf-8")  # JSON is YAML
        return path

    def start(self) -> LiteLLMProxy:
        """Start and wait for ``/health/liveliness``; a port taken meanwhile gets one more try on another."""
        config = self.write_config()
        for attempt in range(2):
            self.port = free_port()
            self._spawn(config)
            try:
                self._wait_alive()
                return self
            except _Exited:
                self.stop(remove=False)
                if attempt == 1 or "address already in use" not in self.log_text().lower():
                    raise RuntimeError(f"LiteLLM did not start; its log:\n{self.log_text()}") from None
        raise AssertionError("unreachable")

    def _spawn(self, config: Path) -> None:
        env = dict(os.environ)
        env.update(
            LITELLM_MASTER_KEY=self.key,
            LITELLM_LOCAL_MODEL_COST_MAP="True",
            PYTHONDONTWRITEBYTECODE="1",
            **self.extra_env,
        )
        self._log = self.log_path.open("ab")
        cmd = [litellm_executable(), "--config", str(config), "--host", "127.0.0.1", "--port", str(self.port)]
        self.proc = subprocess.Popen(
            cmd, cwd=self.workdir, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def _wait_alive(self) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/health/liveliness", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            try:  # the poll interval doubles as a wait for the process to die early
                self.proc.wait(timeout=0.25)
                raise _Exited
            except subprocess.TimeoutExpired:
                pass
        self.stop(remove=False)
        raise RuntimeError(f"LiteLLM did not answer within {self.start_timeout:.0f} s; its log:\n{self.log_text()}")

    def stop(self, *, remove: bool = True) -> None:
        """Terminate the whole process group (SIGKILL after 10 s) and wait for it; idempotent."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            _signal_group(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                _signal_group(proc.pid, signal.SIGKILL)
                proc.wait(10)
        if self._log is not None:
            self._log.close()
            self._log = None
        if remove:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> LiteLLMProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Exited(Exception):
    pass


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def mock_model(name: str, answer: str, *, deployment: str | None = None, **model_info: Any) -> dict[str, Any]:
    """A model entry that answers ``answer`` (or raises, for the ``litellm.*Error`` forms) without any network."""
    entry: dict[str, Any] = {
        "model_name": name,
        "litellm_params": {"model": f"openai/{deployment or name}", "api_key": "sk-fake", "mock_response": answer},
    }
    if model_info:
        entry["model_info"] = model_info
    return entry
