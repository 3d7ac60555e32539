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
- for Gradio 3.36 and older fetches the API description from a huggingface.co service: refused here;
- builds its headers with ``huggingface_hub.build_hf_headers``, whose user-agent step fetches a list of "agent
  harnesses" from huggingface.co (huggingface-hub 2.x, once a day, unless ``HF_HUB_OFFLINE``/telemetry env vars say
  no): :class:`QuietClient`'s constructor runs with a local header builder instead, so no Gradio backend ever
  contacts huggingface.co, whatever the environment (the module itself is left untouched for other users);
- builds an httpx client per request and, with ``ssl_verify=True``, loads the CA bundle into a new SSL context each
  time (60 % of a call's CPU): one process-wide context is passed instead (``ssl_verify`` accepts a context);
- takes the API's address from the app's ``/config`` (``api_prefix``, resolved against the app's URL): an app naming
  another server there would get every later request, the key included. Refused (:class:`ForeignHostError`);
  ``root`` (unused by gradio_client 2.x, read by others) is pinned to the app's own address.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ssl
import threading
import types
import urllib.parse
from typing import Any

import gradio_client.client as gc_client
import gradio_client.utils as gc_utils
import httpx
from gradio_client import Client
from packaging import version

from ...runtime.errors import redact
from ...runtime.urls import same_origin

#: gradio servers send a heartbeat on the event stream every 15 s; a read that waits longer means the server hangs.
READ_TIMEOUT = 60.0
CONNECT_TIMEOUT = 10.0
#: The first Gradio release that serves ``/info`` itself (older ones were described by a huggingface.co service).
OLDEST_SUPPORTED = version.Version("3.37.0")


class TooOldError(RuntimeError):
    """The app's Gradio is older than anything gradio_client can describe without calling huggingface.co."""


class ForeignHostError(RuntimeError):
    """The app's ``/config`` sends the client to another server."""


_ssl_lock = threading.Lock()
_ssl_context: ssl.SSLContext | None = None


def shared_ssl_context() -> ssl.SSLContext:
    """One verifying SSL context for every gradio_client request in this process (httpx's own defaults: certifi's
    bundle, or ``SSL_CERT_FILE``/``SSL_CERT_DIR``), built on first use."""
    global _ssl_context
    with _ssl_lock:
        if _ssl_context is None:
            _ssl_context = httpx.create_ssl_context()
        return _ssl_context


def local_hf_headers(
    *,
    token: str | bool | None = None,
    library_name: str | None = None,
    library_version: str | None = None,
    user_agent: Any = None,
    headers: dict[str, str] | None = None,
) -> dict[str, str]:
    """What ``huggingface_hub.build_hf_headers`` returns for an explicit token (or none), built without reading a
    token store or calling any service."""
    out = {"user-agent": f"{library_name or 'unknown'}/{library_version or 'None'}"}
    if isinstance(token, str) and token:
        out["authorization"] = f"Bearer {token}"
    if headers:
        out.update(headers)
    return out


def _offline_init() -> Any:
    """``Client.__init__`` running against gradio_client's module globals with :func:`local_hf_headers` in place of
    ``build_hf_headers``: only our subclass is affected, never the module other programs may use."""
    init = Client.__init__
    names = dict(vars(gc_client))
    names["build_hf_headers"] = local_hf_headers
    clone = types.FunctionType(init.__code__, names, init.__name__, init.__defaults__, init.__closure__)
    clone.__kwdefaults__ = dict(init.__kwdefaults__ or {})
    clone.__qualname__ = init.__qualname__
    clone.__doc__ = init.__doc__
    return clone


class QuietClient(Client):
    """A ``gradio_client.Client`` that contacts only its server and starts no thread of its own in ``__init__``."""

    #: Whether the app asked for a heartbeat (apps with session state, unload events or streams do).
    md_wants_heartbeat: bool = False
    #: Called (on gradio_client's threads) whenever a job of this client has a new status update: the runner wakes
    #: its loop with it instead of polling.
    md_on_update: Any = None

    __init__ = _offline_init()

    def _telemetry_thread(self) -> None:
        return None

    def _get_config(self) -> dict[str, Any]:
        config: dict[str, Any] = super()._get_config()
        self.md_wants_heartbeat = bool(config.get("connect_heartbeat", True))
        prefix = config.get("api_prefix", "")
        if not isinstance(prefix, str):
            raise ForeignHostError(f"its /config has an api_prefix that is not text ({type(prefix).__name__})")
        target = urllib.parse.urljoin(self.src, prefix.lstrip("/") + "/")
        if not same_origin(target, self.src):
            where = urllib.parse.urlsplit(target).netloc or target
            raise ForeignHostError(f"its /config sends API calls to another server ({redact(where)[:200]})")
        return {**config, "connect_heartbeat": False, "root": self.src.rstrip("/")}

    def new_helper(self, fn_index: int, headers: dict[str, str] | None = None) -> Any:
        """The job's helper, made to call :attr:`md_on_update` when the app accepts the job (its event id is set)
        and after every status update."""
        helper = super().new_helper(fn_index, headers)
        on_update = self.md_on_update
        if on_update is not None and type(helper) is gc_utils.Communicator and hasattr(helper, "updates"):
            helper.updates = _WakingQueue(on_update)
            helper.md_wake = on_update
            helper.__class__ = _WakingCommunicator
        return helper

    def _get_api_info(self) -> Any:
        if self.app_version < OLDEST_SUPPORTED:
            raise TooOldError(f"Gradio {self.app_version} is too old (3.37 or newer is needed)")
        return super()._get_api_info()


class _WakingQueue(asyncio.Queue):  # type: ignore[type-arg]
    """gradio_client's per-job update queue (filled with ``put_nowait`` from its reader thread), calling ``wake``
    after each update so the loop hears of it at once."""

    def __init__(self, wake: Any) -> None:
        super().__init__()
        self._md_wake = wake

    def put_nowait(self, item: Any) -> None:
        super().put_nowait(item)
        self._md_wake()


class _WakingCommunicator(gc_utils.Communicator):
    """A Communicator that calls ``md_wake`` once the app has given the job its event id."""

    def __setattr__(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)
        if name == "event_id":
            wake = self.__dict__.get("md_wake")
            if wake is not None:
                wake()


def build_client(url: str, *, max_workers: int, hf_token: str | None, thread_prefix: str) -> QuietClient:
    """Connect (blocking: run it in a worker thread) and give the client named pools that :func:`shutdown` ends."""
    client = QuietClient(
        url,
        token=hf_token or False,  # type: ignore[arg-type]  # False: never send a locally saved HF token
        max_workers=max_workers,
        verbose=False,
        download_files=False,  # the runner downloads itself: size limits, online-access checks, the job's folder
        analytics_enabled=False,
        ssl_verify=shared_ssl_context(),  # type: ignore[arg-type]  # httpx takes a context: one CA load, not one per call
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
