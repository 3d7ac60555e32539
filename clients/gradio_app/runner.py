"""GradioRunner: gradio_client driven from the runtime's asyncio loop without ever blocking it.

Plain Python: this module never imports bpy. gradio_client is synchronous and thread-based: connecting and posting
cancels run on a small pool of ours, predictions on the client's own (named, bounded) pools, and the loop sleeps
until gradio_client's threads wake it (the job accepted, a status update, the end). Deadlines are ours (gradio_client
has none); cancelling the awaiting task cancels the Gradio job; ``close()`` ends every thread the runner or its
clients started.

Why up to ``max_workers`` clients and not one: a client is one app *session*, and Gradio's ``/cancel`` stops every
running task of the same session and endpoint (``cancel_tasks({session_fn})``), so cancelling one of two parallel
calls to ``/text2audio`` silently killed the other (it then never finished; seen with gradio 6.31). Each client
therefore serves one call at a time and is reused for the next; clients are built lazily, never one per call. A
reused client waits until its event stream has closed after the previous call: gradio_client otherwise attaches the
new call to a stream the server is closing and ends it with CancelledError (a race seen under load).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import logging
import shutil
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
from gradio_client import handle_file

from ...runtime.backend import HealthInfo, NetworkPolicy
from ...runtime.errors import BackendUnavailableError, InvalidRequestError, MovieDirectorError, RequestTimeoutError
from ...runtime.jobs import OutputFile
from ...runtime.urls import validate_url
from ..http import MAX_DOWNLOAD_BYTES, clean_key, guarded_session, require_file
from .call import CallResult, GradioCall
from .compat import QuietClient, build_client, shutdown
from .connection import Connection, Waker
from .endpoints import AppInfo, EndpointInfo, EndpointMatch, EndpointQuery, match_endpoint, not_found, parse_info
from .errors import map_exception
from .files import download_file, replace_files

if TYPE_CHECKING:
    from ...runtime.context import JobContext

log = logging.getLogger(__name__)

#: How long connecting to an app (its /config and /info) may take.
CONNECT_DEADLINE = 30.0
#: How long a reused client may take to see its previous event stream close before it is replaced.
STREAM_SETTLE = 3.0
_COUNTER = itertools.count(1)

__all__ = ["CallResult", "GradioCall", "GradioRunner"]


class GradioRunner:
    """The shared plumbing for every Gradio-based backend. See the package docstring for the API."""

    def __init__(
        self,
        url: str,
        *,
        backend: str,
        network: NetworkPolicy,
        max_workers: int = 2,
        download_dir: str | Path | None = None,
        hf_token: str | None = None,
        max_file_bytes: int = MAX_DOWNLOAD_BYTES,
    ) -> None:
        if max_workers < 1:
            raise ValueError("max_workers must be at least 1")
        try:
            self.url = validate_url(url)
        except ValueError as exc:
            raise InvalidRequestError(str(exc), backend=backend) from None
        if not self.url.startswith(("http://", "https://")):  # gradio_client looks anything else up on huggingface.co
            raise InvalidRequestError(f"{self.url} is not an http(s) address of a Gradio app", backend=backend)
        self.backend = backend
        self.network = network
        self.max_workers = max_workers
        self.max_file_bytes = max_file_bytes
        self._hf_token = hf_token
        self._own_download_dir = download_dir is None
        self._download_dir = Path(download_dir) if download_dir is not None else None
        self.thread_prefix = f"md-gradio-{backend}-{next(_COUNTER)}"
        #: Blocking work of our own: connecting, posting cancels. Threads start on first use.
        self.pool = concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix=f"{self.thread_prefix}-control")
        self._conns: list[Connection] = []  # live clients, idle or serving a call
        self._retired: list[Connection] = []  # replaced clients, ended once their call is over
        self._slots = asyncio.Semaphore(max_workers)
        self._session: aiohttp.ClientSession | None = None
        self._info: AppInfo | None = None
        self._closed = False

    def __repr__(self) -> str:
        return f"GradioRunner({self.url!r}, backend={self.backend!r})"

    # --- connections --------------------------------------------------------------------------------------------
    async def _connect(self) -> Connection:
        """A new client (its constructor blocks on the network: it runs on our pool)."""
        if self._closed:
            raise BackendUnavailableError(f"The connection to {self.url} is closed", backend=self.backend)
        self.network.check(self.url, self.backend)
        future = self.pool.submit(
            build_client,
            self.url,
            max_workers=1,
            hf_token=clean_key(self._hf_token, self.backend),
            thread_prefix=self.thread_prefix,
        )
        try:
            client = await asyncio.wait_for(asyncio.wrap_future(future), CONNECT_DEADLINE)
        except TimeoutError:
            message = f"{self.url} did not answer within {CONNECT_DEADLINE:.0f} s"
            raise BackendUnavailableError(message, backend=self.backend) from None
        except MovieDirectorError:
            raise
        except Exception as exc:
            raise map_exception(exc, url=self.url, backend=self.backend) from None
        conn = Connection(client)
        if self._closed:  # closed while connecting
            self._end(conn)
            raise BackendUnavailableError(f"The connection to {self.url} is closed", backend=self.backend)
        if client.md_wants_heartbeat:
            conn.heartbeat = asyncio.get_running_loop().create_task(
                self._heartbeat(client), name=f"{self.thread_prefix}-heartbeat"
            )
        if self._info is None:
            raw = client.view_api(print_info=False, return_format="dict")
            version = str(client.config.get("version", ""))
            self._info = parse_info(raw, url=self.url, version=version, backend=self.backend)
        self._conns.append(conn)
        return conn

    async def _acquire(self, end: float) -> Connection:
        """A client with no call in flight whose last event stream has closed (a new one if none is idle)."""
        await self._slots.acquire()
        try:
            for conn in [c for c in self._conns if not c.busy]:
                conn.busy = True
                if await self._settled(conn, end):
                    return conn
                conn.busy = False
                self.retire(conn)
            conn = await self._connect()
            conn.busy = True
            return conn
        except BaseException:
            self._slots.release()
            raise

    def _release(self, conn: Connection) -> None:
        if conn.busy:
            conn.busy = False
            conn.call = None
            self._slots.release()
            if conn.retired and conn in self._retired:
                self._retired.remove(conn)
                self._end(conn)

    async def _settled(self, conn: Connection, end: float) -> bool:
        loop = asyncio.get_running_loop()
        limit = min(end, loop.time() + STREAM_SETTLE)
        while conn.stream_open and loop.time() < limit and not conn.retired:
            await asyncio.sleep(0.01)
        return not conn.stream_open and not conn.retired

    async def _heartbeat(self, client: QuietClient) -> None:
        """What gradio_client's heartbeat thread does, as a task: keeps the app's session state alive."""
        url = client.heartbeat_url.format(session_hash=client.session_hash)
        delay = 1.0
        while True:
            try:
                self.network.check(url, self.backend)
                timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=None)
                async with self._http().get(url, headers=client.headers, timeout=timeout) as resp:
                    if 400 <= resp.status < 500 and resp.status != 429:
                        return
                    async for _line in resp.content:
                        delay = 1.0
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.debug("heartbeat to %s: %s", self.url, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 60.0)

    def _http(self) -> aiohttp.ClientSession:
        """Our own requests (heartbeat, downloads) stay on the app's server, like the client's (:func:`hop_guard`)."""
        if self._session is None or self._session.closed:
            self._session = guarded_session(self.url, self.network, self.backend, base=False)
        return self._session

    def retire(self, conn: Connection) -> None:
        """The app went away, restarted or left the session in doubt: this client ends once its call is over."""
        if conn.retired:
            return
        conn.retired = True
        if conn in self._conns:
            self._conns.remove(conn)
        if not self._conns:  # the next connection reads the app's API afresh (it may have changed on a restart)
            self._info = None
        if conn.busy:
            self._retired.append(conn)
        else:
            self._end(conn)

    def call_ended(self, call: GradioCall) -> None:
        if call.conn.call is call:
            self._release(call.conn)

    @staticmethod
    def _end(conn: Connection) -> None:
        if conn.heartbeat is not None:
            conn.heartbeat.cancel()
        shutdown(conn.client)

    # --- what the app offers ------------------------------------------------------------------------------------
    async def info(self) -> AppInfo:
        """The app's endpoints and their parameters (from the ``/info`` fetched when the first client connected)."""
        if self._info is None:
            await self._connect()
        assert self._info is not None
        return self._info

    async def find_endpoint(self, candidates: EndpointQuery | Sequence[EndpointQuery]) -> EndpointMatch:
        """The endpoint the first matching query describes; NotFoundError naming what the app offers otherwise."""
        queries = [candidates] if isinstance(candidates, EndpointQuery) else list(candidates)
        info = await self.info()
        match = match_endpoint(info.endpoints, queries)
        if match is None:
            raise not_found(info, queries, self.backend)
        return match

    async def health(self) -> HealthInfo:
        """Connect (if needed) and say what the app is; never raises."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        try:
            info = await self.info()
        except MovieDirectorError as exc:
            return HealthInfo(ok=False, url=self.url, message=str(exc))
        return HealthInfo(
            ok=True,
            url=self.url,
            version=info.version,
            latency_ms=(loop.time() - start) * 1000.0,
            message=f"Gradio {info.version}, {len(info.endpoints)} endpoints",
        )

    # --- calls ----------------------------------------------------------------------------------------------------
    async def start(
        self,
        endpoint: str | int | EndpointInfo | EndpointMatch,
        *args: Any,
        ctx: JobContext | None = None,
        deadline: float,
        **kwargs: Any,
    ) -> GradioCall:
        """Submit a prediction and return once the app has queued it. ``deadline`` (seconds) bounds everything up to
        the end of :meth:`GradioCall.result`. ``pathlib.Path`` arguments are uploaded as files."""
        if deadline <= 0:
            raise InvalidRequestError("A call needs a positive deadline", backend=self.backend)
        loop = asyncio.get_running_loop()
        end = loop.time() + deadline
        key = endpoint.key if isinstance(endpoint, (EndpointInfo, EndpointMatch)) else endpoint
        where = {"api_name": "/" + key.lstrip("/")} if isinstance(key, str) else {"fn_index": key}
        label = str(where.get("api_name") or f"endpoint #{key}")
        try:
            async with asyncio.timeout_at(end):
                info = await self.info()
                if isinstance(key, str) and info.endpoint(key) is None:
                    raise not_found(info, [EndpointQuery(names=(key,), what=f"endpoint {label}")], self.backend)
                conn = await self._acquire(end)
        except TimeoutError:
            message = f"{self.url} was not ready within {deadline:.0f} s"
            raise RequestTimeoutError(message, backend=self.backend) from None
        waker = Waker(loop)
        conn.client.md_on_update = waker  # this client serves this one call until it is released
        try:
            inputs = [_input(v, self.backend) for v in args]
            named = {k: _input(v, self.backend) for k, v in kwargs.items()}
            job = conn.client.submit(*inputs, **where, **named)
        except BaseException as exc:
            self._release(conn)
            if isinstance(exc, (TypeError, ValueError)):
                message = f"Cannot call {label} on {self.url}: {exc}"
                raise InvalidRequestError(message, backend=self.backend) from None
            if isinstance(exc, RuntimeError):  # its pools were shut down: the runner is closing
                raise BackendUnavailableError(f"The connection to {self.url} is closed", backend=self.backend) from None
            raise
        call = conn.call = GradioCall(self, conn, job, label, ctx, end, waker)
        await call.accepted()  # on failure or cancellation it has already released the connection
        return call

    async def call(
        self,
        endpoint: str | int | EndpointInfo | EndpointMatch,
        *args: Any,
        ctx: JobContext | None = None,
        deadline: float,
        **kwargs: Any,
    ) -> CallResult:
        """Run one prediction to its end: progress and log lines go to ``ctx``; files land in ``ctx.output_dir``
        (or the runner's download folder without a ctx)."""
        call = await self.start(endpoint, *args, ctx=ctx, deadline=deadline, **kwargs)
        return await call.result()

    @property
    def busy(self) -> int:
        """Predictions in flight (for picking the least busy of several servers)."""
        return sum(1 for c in (*self._conns, *self._retired) if c.busy)

    def download_dir(self) -> Path:
        """Where files of calls without a job context go (a private temporary folder unless one was given)."""
        if self._download_dir is None:
            self._download_dir = Path(tempfile.mkdtemp(prefix="md-gradio-"))
        return self._download_dir

    async def collect(self, raw: Any, call: GradioCall) -> CallResult:
        """Download every file in an answer into the call's folder; returns the answer with local paths."""
        folder = (call.ctx.output_dir if call.ctx is not None else self.download_dir()).resolve()
        files: list[OutputFile] = []
        client = call.conn.client
        headers = dict(client.headers)

        async def fetch(data: dict[str, Any], where: str) -> str:
            if call.ctx is not None:
                call.ctx.report_progress(stage="downloading", message=str(data.get("orig_name") or "output"))
            out = await download_file(
                self._http(),
                data,
                root=client.src_prefixed,
                folder=folder,
                network=self.network,
                backend=self.backend,
                headers=headers,
                where=where,
                max_bytes=self.max_file_bytes,
            )
            files.append(out)
            return out.path

        data = await replace_files(raw, fetch)
        return CallResult(data=data, files=tuple(files), api_name=call.api_name, event_id=call.id)

    # --- the end --------------------------------------------------------------------------------------------------
    async def close(self, timeout: float = 2.0) -> None:
        """Cancel what is in flight, stop every pool and task, and wait (up to ``timeout``) until no thread of this
        runner is left. Everything that stops work is done before the first wait, so a caller that cannot wait long
        (the runtime gives closers a fraction of a second) still leaves nothing running for long."""
        if self._closed:
            return
        self._closed = True
        conns = [*self._conns, *self._retired]
        self._conns, self._retired = [], []
        calls = [c.call for c in conns if c.call is not None]
        cancels = [f for f in (call.abandon() for call in calls) if f is not None]
        for conn in conns:
            if conn.heartbeat is not None:
                conn.heartbeat.cancel()
        self.pool.shutdown(wait=False)  # queued cancels still go out
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        if cancels:
            await asyncio.wait([asyncio.wrap_future(f) for f in cancels], timeout=timeout / 2)
        for conn in conns:
            self._end(conn)
        heartbeats = [c.heartbeat for c in conns if c.heartbeat is not None]
        if heartbeats:
            await asyncio.wait(heartbeats, timeout=max(0.0, end - loop.time()))
        if self._session is not None:
            await self._session.close()
        while self.threads() and loop.time() < end:
            await asyncio.sleep(0.02)
        left = self.threads()
        if left:
            log.warning("%s: %d threads still running after close: %s", self.url, len(left), left)
        if self._own_download_dir and self._download_dir is not None:
            shutil.rmtree(self._download_dir, ignore_errors=True)

    def threads(self) -> list[str]:
        """Names of the live threads this runner started (for tests and for close)."""
        prefix = self.thread_prefix + "-"
        return [t.name for t in threading.enumerate() if t.name.startswith(prefix)]


def _input(value: Any, backend: str = "") -> Any:
    """``pathlib.Path`` values are files to upload (they must exist: a missing one is the caller's mistake)."""
    if isinstance(value, Path):
        return handle_file(str(require_file(value, backend=backend)))
    return value
