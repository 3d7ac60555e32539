"""The queue controls of the runtime's front: pause and resume a backend, move a queued job, concurrency, counts.

Plain Python: this module never imports bpy. Called on the home thread; each control is carried out on the loop.
The paused set is kept here too, so draw code can show it without asking the loop.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from .errors import InvalidRequestError

if TYPE_CHECKING:
    from .backend import BackendConfig
    from .bridge import JobHandle
    from .engine import Engine

T = TypeVar("T")


class QueueControl:
    """Mixed into :class:`~runtime.core.Runtime`, which provides what is declared below."""

    engine: Engine
    _handles: dict[str, JobHandle]
    #: Backends whose queue is held ("*" = all), as the home thread asked: read by draw code.
    paused_backends: set[str]

    @property
    def running(self) -> bool:
        raise NotImplementedError

    def on_loop(self, fn: Callable[[], Any]) -> None:
        raise NotImplementedError

    def configure(self, config: BackendConfig) -> None:
        raise NotImplementedError

    def call(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        raise NotImplementedError

    def pause(self, backend: str | None = None) -> None:
        """Hold queued jobs (all backends, or one); running jobs carry on."""
        self.paused_backends.add(backend or "*")
        self.on_loop(lambda: self.engine.scheduler.pause(backend))

    def resume(self, backend: str | None = None) -> None:
        self.paused_backends.difference_update({backend} if backend else set(self.paused_backends))
        self.on_loop(lambda: self.engine.scheduler.resume(backend))

    def is_paused(self, backend: str) -> bool:
        """Whether ``backend``'s queue is held (cheap: for draw code)."""
        return backend in self.paused_backends or "*" in self.paused_backends

    def set_priority(self, job_id: str, priority: int) -> None:
        """Move a queued job up (higher) or down its backend's queue; a job that has started is not affected."""
        handle = self._handles.get(job_id)
        if handle is None:
            raise InvalidRequestError(f"Unknown job {job_id!r}")
        backend = handle.status().backend
        self.on_loop(lambda: self.engine.scheduler.reprioritize(backend, job_id, int(priority)))

    def set_concurrency(self, backend: str, limit: int) -> None:
        """Change how many jobs of one backend run at once, live."""
        if limit < 1:
            raise InvalidRequestError(f"Concurrency must be at least 1, not {limit}", backend=backend)
        self.configure(self.engine.configs[backend].model_copy(update={"concurrency": limit}))

    def stats(self, timeout: float = 2.0) -> dict[str, dict[str, Any]]:
        """Active and queued jobs per backend."""
        if not self.running:
            return {}

        async def read() -> dict[str, dict[str, Any]]:
            return self.engine.scheduler.stats()

        return self.call(read()).result(timeout)
