"""gradio_client made fit for a long-lived host program: no telemetry, no heartbeat thread, named bounded pools.

Plain Python: this module never imports bpy. Facts: ``shared/protocols/gradio.md``. ``gradio_client.Client`` (2.x)

- starts a telemetry thread that calls huggingface.co even with ``analytics_enabled=False`` unless an environment
  variable says otherwise: :class:`QuietClient` makes it a no-op, so nothing but the configured server is contacted;
- picks up a locally saved Hugging Face token and sends it to *any* app: we pass ``token=False`` unless the user set
  one for this server;
- starts a heartbeat thread that only notices ``close()`` when the server's next heartbeat line arrives (every 15 s),
  so it outlives ``close()``: the config is rewritten to ``connect_heartbeat: False`` and the runner sends the
  heartbeat itself on its event loop, where cancelling it is instant;
- runs predictions on unnamed thread pools that nothing ever shuts down: they are replaced here by pools whose
  threads carry a prefix, so the runner can shut them down and prove that no thread survived;
- deadlocked in older releases once ``max_workers`` predictions were in flight (each holds a thread while two
  helpers run for it on the same pool): the prediction pool gets room for the helpers when there is no separate
  helper pool, and the runner never has more than ``max_workers`` predictions in flight;
- for Gradio 3.36 and older fetches the API description from a huggingface.co service: refused here.
"""

from __future__ import annotations

import concurrent.futures
from typing import Any

import httpx
from gradio_client import Client
from packaging import version

#: gradio servers send a heartbeat on the event stream every 15 s; a read that waits longer means the server hangs.
READ_TIMEOUT = 60.0
CONNECT_TIMEOUT = 10.0
#: The first Gradio release that serves ``/info`` itself (older ones were described by a huggingface.co service).
OLDEST_SUPPORTED = version.Version("3.37.0")


class TooOldError(RuntimeError):
    """The app's Gradio is older than anything gradio_client can describe without calling huggingface.co."""


class QuietClient(Client):
    """A ``gradio_client.Client`` that contacts only its server and starts no thread of its own in ``__init__``."""

    #: Whether the app asked for a heartbeat (apps with session state, unload events or streams do).
    md_wants_heartbeat: bool = False

    def _telemetry_thread(self) -> None:
        return None

    def _get_config(self) -> dict[str, Any]:
        config: dict[str, Any] = super()._get_config()
        self.md_wants_heartbeat = bool(config.get("connect_heartbeat", True))
        return {**config, "connect_heartbeat": False}

    def _get_api_info(self) -> Any:
        if self.app_version < OLDEST_SUPPORTED:
            raise TooOldError(f"Gradio {self.app_version} is too old (3.37 or newer is needed)")
        return super()._get_api_info()


def build_client(url: str, *, max_workers: int, hf_token: str | None, thread_prefix: str) -> QuietClient:
    """Connect (blocking: run it in a worker thread) and give the client named pools that :func:`shutdown` ends."""
    client = QuietClient(
        url,
        token=hf_token or False,  # type: ignore[arg-type]  # False: never send a locally saved HF token
        max_workers=max_workers,
        verbose=False,
        download_files=False,  # the runner downloads itself: size limits, online-access checks, the job's folder
        analytics_enabled=False,
        httpx_kwargs={"timeout": httpx.Timeout(CONNECT_TIMEOUT, read=READ_TIMEOUT, write=READ_TIMEOUT)},
    )
    separate_helpers = hasattr(client, "helper_executor")
    sizes = {
        "executor": max_workers if separate_helpers else 3 * max_workers,
        "helper_executor": 2 * max_workers,
        "stream_executor": 1,
    }
    for attr, size in sizes.items():
        old = getattr(client, attr, None)
        if isinstance(old, concurrent.futures.ThreadPoolExecutor):
            old.shutdown(wait=False)  # never used yet: pools start their threads on first use
            pool = concurrent.futures.ThreadPoolExecutor(size, thread_name_prefix=f"{thread_prefix}-{attr}")
            setattr(client, attr, pool)
    return client


def shutdown(client: Client) -> None:
    """Stop everything a client runs without blocking: running predictions end once they are cancelled or their
    server answers; queued ones are dropped."""
    try:
        client.close()
    except Exception:  # pragma: no cover - close() only sets an event and joins a thread that never started
        pass
    for attr in ("executor", "helper_executor", "stream_executor"):
        pool = getattr(client, attr, None)
        if isinstance(pool, concurrent.futures.ThreadPoolExecutor):
            pool.shutdown(wait=False, cancel_futures=True)
