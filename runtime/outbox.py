"""What crosses the thread line: frozen, typed messages from the loop, and the outbox the home thread pumps.

Plain Python: this module never imports bpy. The loop thread *posts* messages; whichever thread calls
:meth:`Outbox.pump` (Blender's main thread through a ``bpy.app.timers`` function, or a headless script inside
``JobHandle.wait``) delivers them. Every message is immutable (a typed named tuple: cheap to make and to free, which
matters at thousands a second) and carries its own snapshot of the job, so the home thread never reads an object the
loop mutates (Flamenco's ``MsgProgress``/``MsgDone`` are the model). The pump is
bounded by a time budget, keeps only the newest progress per job within one drain, and never raises into its caller.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

if TYPE_CHECKING:
    from .jobs import Job

log = logging.getLogger(__name__)


class Receiver(Protocol):
    """The home-thread side of one job (a :class:`~runtime.bridge.JobHandle`)."""

    def deliver_progress(self, job: Job) -> None: ...
    def deliver_done(self, job: Job) -> None: ...
    def deliver_log(self, job: Job, line: str) -> None: ...
    def deliver_text(self, delta: str) -> None: ...


@dataclass(frozen=True)
class RuntimeEvent:
    """Something the runtime wants the UI to know: a backend's connection changed, a job was queued or finished.

    ``kind`` is one of ``backend_state``, ``job_queued``, ``job_started``, ``job_finished``; ``job`` is the job's
    snapshot at that moment (the final one for ``job_finished``).
    """

    kind: str
    backend: str = ""
    job_id: str = ""
    state: str = ""
    message: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    job: Job | None = None


class Progressed(NamedTuple):
    """Progress or state changed; coalesced to the newest per job within one drain."""

    to: Receiver
    job: Job


class Finished(NamedTuple):
    """The job is terminal; ``job`` is its final snapshot. Supersedes any progress before it."""

    to: Receiver
    job: Job


class Logged(NamedTuple):
    to: Receiver
    job: Job
    line: str


class Streamed(NamedTuple):
    """A piece of streamed text: never coalesced, every delta reaches ``on_text`` callbacks in order."""

    to: Receiver
    delta: str


class Noticed(NamedTuple):
    event: RuntimeEvent


class Call(NamedTuple):
    """Run ``fn`` on the pumping thread (a pipeline's snapshot, a replayed callback)."""

    fn: Callable[[], Any]


Message = Progressed | Finished | Logged | Streamed | Noticed | Call
Subscriber = tuple[Callable[[RuntimeEvent], Any], frozenset[str] | None]


class Outbox:
    """A lock-free deque of messages (deque append/popleft are atomic in CPython)."""

    def __init__(self) -> None:
        self._q: deque[Message] = deque()
        self._later: deque[Callable[[], Any]] = deque()
        self.subscribers: list[Subscriber] = []
        self.callback_errors = 0

    def post(self, message: Message) -> None:
        self._q.append(message)

    def notice(self, event: RuntimeEvent) -> None:
        if self.subscribers:
            self._q.append(Noticed(event))

    def call(self, fn: Callable[[], Any]) -> None:
        """Run ``fn`` on the pumping thread at the next pump."""
        self._q.append(Call(fn))

    def later(self, fn: Callable[[], Any]) -> None:
        """Pumping thread: run ``fn`` first thing in the next pump, not in the one running now (:meth:`call` from a
        callback would run in this one). For what must wait a pump: the sidebar's once-per-pump preview image."""
        self._later.append(fn)

    def __len__(self) -> int:
        """What waits for a pump: messages and :meth:`later` calls (Blender's timer keeps pumping while any wait)."""
        return len(self._q) + len(self._later)

    def pump(self, budget: float = 0.008) -> int:
        """Deliver queued messages on this thread for at most ``budget`` seconds; returns how many were taken."""
        n = self._run_later() if self._later else 0
        q = self._q
        if not q:
            return n
        end = time.perf_counter() + budget
        popleft = q.popleft
        progress: dict[Receiver, Job] = {}
        try:
            while q:
                msg: Any = popleft()  # dispatched on its exact type below
                n += 1
                kind = type(msg)
                if kind is Progressed:
                    progress[msg[0]] = msg[1]
                    continue
                if kind is Finished:
                    target = msg[0]
                    if progress:
                        progress.pop(target, None)  # the final snapshot supersedes it
                    target.deliver_done(msg[1])
                elif kind is Noticed:
                    self._deliver_notice(msg[0])
                elif kind is Call:
                    self._guard(msg[0])
                else:
                    target = msg[0]
                    pending = progress.pop(target, None) if progress else None
                    if pending is not None:  # keep the order: progress before this log line or text
                        target.deliver_progress(pending)
                    if kind is Logged:
                        target.deliver_log(msg[1], msg[2])
                    else:
                        target.deliver_text(msg[1])
                if not n & 31 and time.perf_counter() > end:
                    break
        except IndexError:  # another thread pumped the last message concurrently
            pass
        for target, job in progress.items():
            target.deliver_progress(job)
        return n

    def _run_later(self) -> int:
        """Run what :meth:`later` held for this pump (only those: one added now waits for the next pump)."""
        later = self._later
        n = 0
        try:
            for _ in range(len(later)):
                self._guard(later.popleft())
                n += 1
        except IndexError:  # another thread pumped them concurrently
            pass
        return n

    def _deliver_notice(self, event: RuntimeEvent) -> None:
        for cb, kinds in list(self.subscribers):
            if kinds is None or event.kind in kinds:
                self._guard(cb, event)

    def _guard(self, fn: Callable[..., Any], *args: Any) -> bool:
        try:
            fn(*args)
            return True
        except Exception:
            self.callback_errors += 1
            log.exception("a Movie Director callback failed")
            return False
