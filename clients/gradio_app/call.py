"""One prediction in flight on a Gradio app: followed from the loop (woken by gradio_client's threads on every
update, never polled), bounded by our deadline, cancelled on the app when the awaiting task is cancelled.

Plain Python: this module never imports bpy. A call knows its owner only through :class:`CallOwner` (what
:class:`~.runner.GradioRunner` offers it), so this module does not import the runner.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from ...runtime.errors import BackendUnavailableError, JobCancelledError, RequestTimeoutError
from ...runtime.jobs import OutputFile
from .connection import Connection, Waker
from .errors import map_exception
from .progress import StatusMapper, drain

if TYPE_CHECKING:
    from ...runtime.context import JobContext

log = logging.getLogger(__name__)

#: How long a "please stop" request to an app may take.
CANCEL_TIMEOUT = 5.0
#: Longest sleep between two looks at a call when no wake-up comes (a safety net: updates wake the call at once).
IDLE_LOOK = 1.0


class CallOwner(Protocol):
    """What a call needs from the runner that started it."""

    backend: str
    url: str
    pool: concurrent.futures.ThreadPoolExecutor

    def retire(self, conn: Connection) -> None: ...

    def call_ended(self, call: GradioCall) -> None: ...

    async def collect(self, raw: Any, call: GradioCall) -> CallResult: ...


@dataclass(frozen=True)
class CallResult:
    """What an endpoint returned: ``data`` as gradio_client shapes it (one value, or a tuple for several outputs)
    with every file replaced by its local path, and those files described in ``files``."""

    data: Any
    files: tuple[OutputFile, ...] = ()
    api_name: str = ""
    event_id: str | None = None


class GradioCall:
    """One prediction in flight. Made by :meth:`GradioRunner.start`; ``await result()`` follows it to its end."""

    def __init__(
        self,
        runner: CallOwner,
        conn: Connection,
        job: Any,
        label: str,
        ctx: JobContext | None,
        end: float,
        waker: Waker | None = None,
    ) -> None:
        self._runner = runner
        self.conn = conn
        self.job = job
        self.api_name = label
        self.ctx = ctx
        self.end = end  # loop.time() by which everything, downloads included, must be done
        self.mapper = StatusMapper(ctx, label)
        self.cancelled = False
        self._cancel_future: concurrent.futures.Future[Any] | None = None
        self._finished = False
        self._waker = waker or Waker(asyncio.get_running_loop())
        job.future.add_done_callback(self._waker)  # on a gradio_client thread

    def __repr__(self) -> str:
        return f"<GradioCall {self.api_name} {self.id} {'done' if self.done else 'running'}>"

    @property
    def id(self) -> str | None:
        """The app's event id (set once the app accepted the job)."""
        return getattr(getattr(self.job, "communicator", None), "event_id", None)

    @property
    def done(self) -> bool:
        return self._finished or self.job.future.done()

    def pump(self) -> None:
        """Hand every new status update to the job's context (loop thread)."""
        self.mapper.apply(drain(self.job, self.mapper.last))

    async def _follow(self, until: Any) -> None:
        """Hand over updates as they come until ``until()``; sleeps until gradio_client wakes us."""
        while not until():
            self.pump()
            if self.job.future.done():
                break
            await self._waker.wait(IDLE_LOOK)
        self.pump()

    async def accepted(self) -> None:
        """Wait until the app has queued the job (or the job already ended)."""
        await self._guard(self._follow(lambda: self.id is not None or self.job.future.done()))

    async def result(self) -> CallResult:
        """Follow the job to its end; raises only the shared error hierarchy (or CancelledError)."""
        try:
            return await self._guard(self._finish_and_collect())  # type: ignore[no-any-return]
        finally:
            self.release()

    async def _finish_and_collect(self) -> CallResult:
        await self._follow(lambda: self.job.future.done())
        if self.cancelled:  # its end is our own doing: never read it (gradio_client 2.7 raises KeyError there)
            raise JobCancelledError(f"{self.api_name} was cancelled", backend=self._runner.backend)
        exc = self.job.future.exception()
        if exc is not None:
            error = map_exception(exc, url=self._runner.url, backend=self._runner.backend)
            if isinstance(error, BackendUnavailableError):
                self._runner.retire(self.conn)
            raise error
        return await self._runner.collect(self.job.future.result(), self)

    async def _guard(self, awaitable: Any) -> Any:
        """Our deadline around anything that waits on the app; a cancelled or late job is cancelled there too."""
        try:
            async with asyncio.timeout_at(self.end):
                return await awaitable
        except TimeoutError:
            self.abandon()
            self.release()
            raise RequestTimeoutError(
                f"The app at {self._runner.url} did not finish {self.api_name} in time", backend=self._runner.backend
            ) from None
        except BaseException:  # cancelled, or failed: nothing more will come of this job
            self.abandon()
            self.release()
            raise

    def abandon(self) -> concurrent.futures.Future[Any] | None:
        """Ask the app to drop the job (once; on the runner's pool, since it posts). The job's result is never read
        afterwards: gradio_client 2.7 raises KeyError there."""
        if self._cancel_future is None and not self.job.future.done():
            self.cancelled = True
            try:
                self._cancel_future = self._runner.pool.submit(self.job.cancel)
            except RuntimeError:  # the pool is shut down: the runner is closing
                pass
        return self._cancel_future

    async def cancel(self) -> None:
        """Cancel the job on the app and wait (briefly) for the request to go out. Idempotent."""
        future = self.abandon()
        self.release()
        if future is not None:
            try:
                await asyncio.wait_for(asyncio.wrap_future(future), CANCEL_TIMEOUT)
            except Exception as exc:  # the app may be gone; the job is cancelled locally either way
                log.info("cancelling %s on %s failed: %s", self.api_name, self._runner.url, exc)

    def release(self) -> None:
        """This call no longer needs its connection (idempotent)."""
        if not self._finished:
            self._finished = True
            self._runner.call_ended(self)
