"""Retry policy: which failures to try again, how long to wait, and a total deadline that retries never exceed.

Plain Python: this module never imports bpy. The defaults follow openai-python: retry connection errors, 408, 409,
429 and 5xx twice, wait min(0.5 * 2**n, 8) seconds times a jitter in [0.75, 1], and honour a server's
``Retry-After``/``retry-after-ms`` up to 120 s.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from .errors import MovieDirectorError, RateLimitedError, RequestTimeoutError

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """Subclass and override :meth:`should_retry` / :meth:`delay` for a custom policy."""

    max_retries: int = 2
    base_delay: float = 0.5
    max_delay: float = 8.0
    jitter: tuple[float, float] = (0.75, 1.0)
    max_retry_after: float = 120.0
    #: Total seconds one call may take, retries and waits included (None = no deadline).
    deadline: float | None = 300.0

    def should_retry(self, error: BaseException, attempt: int) -> bool:
        """``attempt`` counts from 0 for the first retry."""
        if attempt >= self.max_retries:
            return False
        return isinstance(error, MovieDirectorError) and error.retryable

    def delay(self, attempt: int, error: BaseException | None = None) -> float:
        if isinstance(error, RateLimitedError) and error.retry_after is not None:
            return min(error.retry_after, self.max_retry_after)
        backoff = min(self.base_delay * (2**attempt), self.max_delay)
        return backoff * random.uniform(*self.jitter)


NO_RETRY = RetryPolicy(max_retries=0)
DEFAULT_POLICY = RetryPolicy()


async def call_with_retry(
    fn: Callable[[], Awaitable[T]],
    policy: RetryPolicy = DEFAULT_POLICY,
    *,
    backend: str = "",
    deadline: float | None = None,
) -> T:
    """Await ``fn()`` until it succeeds, the policy gives up, or the total deadline passes.

    ``deadline`` overrides ``policy.deadline`` (seconds from now). Each attempt is itself bounded by what is left of
    the deadline, so a hung server cannot stretch a call beyond it.
    """
    total = policy.deadline if deadline is None else deadline
    end = None if total is None else time.monotonic() + total
    attempt = 0
    while True:
        remaining = None if end is None else end - time.monotonic()
        if remaining is not None and remaining <= 0:
            raise RequestTimeoutError(f"No answer within the {total:.0f} s deadline", backend=backend)
        try:
            if remaining is None:
                return await fn()
            async with asyncio.timeout(remaining):
                return await fn()
        except TimeoutError as exc:
            error: BaseException = RequestTimeoutError(f"No answer within the {total:.0f} s deadline", backend=backend)
            if end is not None and time.monotonic() >= end:
                raise error from exc
        except MovieDirectorError as exc:
            error = exc
        if not policy.should_retry(error, attempt):
            raise error
        wait = policy.delay(attempt, error)
        if end is not None and time.monotonic() + wait >= end:
            raise error
        log.info("%s: retrying in %.2f s after %s", backend or "request", wait, type(error).__name__)
        await asyncio.sleep(wait)
        attempt += 1
