from __future__ import annotations

import asyncio
import email.utils
import time

import pytest
from movie_director.runtime import errors
from movie_director.runtime.errors import (
    AuthenticationError,
    BackendUnavailableError,
    InvalidRequestError,
    NotFoundError,
    RateLimitedError,
    RequestTimeoutError,
    ServerError,
    error_for_status,
    parse_retry_after,
    register_secret,
)
from movie_director.runtime.retry import RetryPolicy, call_with_retry


@pytest.mark.parametrize(
    ("status", "cls", "retryable"),
    [
        (400, InvalidRequestError, False),
        (401, AuthenticationError, False),
        (403, AuthenticationError, False),
        (404, NotFoundError, False),
        (408, RequestTimeoutError, True),
        (409, ServerError, True),
        (429, RateLimitedError, True),
        (500, ServerError, True),
        (503, ServerError, True),
    ],
)
def test_status_mapping(status: int, cls: type, retryable: bool) -> None:
    err = error_for_status(status, "boom", backend="x")
    assert type(err) is cls and err.retryable is retryable and err.status == status
    assert err.code.value in err.to_dict()["code"]


def test_messages_tell_the_user_what_to_do() -> None:
    err = BackendUnavailableError("Cannot reach http://127.0.0.1:1", backend="comfyui")
    assert str(err).startswith("comfyui: Cannot reach") and "preferences" in str(err)


def test_retry_after_forms() -> None:
    assert parse_retry_after({"retry-after-ms": "1500"}) == 1.5
    assert parse_retry_after({"Retry-After": "30"}) == 30
    assert parse_retry_after({"retry-after": "9999"}) == 120
    now = time.time()
    date = email.utils.formatdate(now + 10, usegmt=True)
    assert 8 <= (parse_retry_after({"retry-after": date}, now=now) or 0) <= 11
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None
    err = error_for_status(429, "slow", backend="llm", headers={"retry-after": "7"})
    assert isinstance(err, RateLimitedError) and err.retry_after == 7


def test_secrets_never_reach_messages_details_or_reprs() -> None:
    key = "sk-test-very-secret-key-123"
    register_secret(key)
    err = AuthenticationError(f"bad key {key}", backend="llm", details={"auth": f"Bearer {key}", "n": [key]})
    for text in (str(err), repr(err), str(err.to_dict()), str(err.details)):
        assert key not in text
    assert errors.REDACTED in str(err)


def test_default_policy_delays_follow_the_formula() -> None:
    policy = RetryPolicy()
    for attempt in range(6):
        d = policy.delay(attempt)
        base = min(0.5 * 2**attempt, 8.0)
        assert 0.75 * base <= d <= base
    assert policy.delay(0, RateLimitedError("x", retry_after=500)) == 120
    assert policy.should_retry(ServerError("x"), 0) and policy.should_retry(ServerError("x"), 1)
    assert not policy.should_retry(ServerError("x"), 2)
    assert not policy.should_retry(InvalidRequestError("x"), 0)
    assert policy.should_retry(BackendUnavailableError("x"), 0)


def test_retries_until_success_and_stops_on_permanent_errors() -> None:
    calls = []

    async def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ServerError("temporary")
        return "ok"

    fast = RetryPolicy(base_delay=0.001)
    assert asyncio.run(call_with_retry(flaky, fast)) == "ok" and len(calls) == 3

    async def bad() -> None:
        calls.append(2)
        raise InvalidRequestError("no")

    calls.clear()
    with pytest.raises(InvalidRequestError):
        asyncio.run(call_with_retry(bad, fast))
    assert len(calls) == 1


def test_total_deadline_is_never_exceeded_by_retries() -> None:
    async def hang() -> None:
        await asyncio.sleep(10)

    start = time.monotonic()
    with pytest.raises(RequestTimeoutError):
        asyncio.run(call_with_retry(hang, RetryPolicy(max_retries=5), deadline=0.3))
    assert time.monotonic() - start < 1.0

    async def rate_limited() -> None:
        raise RateLimitedError("wait", retry_after=60)

    start = time.monotonic()
    with pytest.raises(RateLimitedError):
        asyncio.run(call_with_retry(rate_limited, RetryPolicy(), deadline=1.0))
    assert time.monotonic() - start < 0.5  # a 60 s wait would cross the deadline: give up at once


def test_custom_policy_hooks() -> None:
    class Always(RetryPolicy):
        def should_retry(self, error: BaseException, attempt: int) -> bool:
            return attempt < 4

        def delay(self, attempt: int, error: BaseException | None = None) -> float:
            return 0.0

    calls = []

    async def fail() -> None:
        calls.append(1)
        raise InvalidRequestError("never retried by default")

    with pytest.raises(InvalidRequestError):
        asyncio.run(call_with_retry(fail, Always()))
    assert len(calls) == 5


def test_a_secret_inside_a_longer_one_does_not_break_the_longer_one_up() -> None:
    from movie_director.runtime.errors import redact, register_secret

    key = "sk-nested-0123456789abcdefghijklmnop"
    register_secret(key[:12])  # registered first, as a key pasted in pieces would be
    register_secret(key)
    assert redact(f"echo: {key}!") == "echo: ***!"
    assert redact(f"part: {key[:12]}") == "part: ***"
