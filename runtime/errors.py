"""One error hierarchy for every backend.

Plain Python: this module never imports bpy. Every error carries the backend name, the HTTP status where there is
one, a machine-readable ``code`` and a message that tells a film-maker what to do next. Secrets registered with
:func:`register_secret` are scrubbed from every message, detail and repr, so an API key can never leak through an
exception that ends up in a log, a report or the sidebar.
"""

from __future__ import annotations

import errno
import math
import os.path
import threading
import time
from collections.abc import Mapping
from enum import StrEnum
from typing import Any


class ErrorCode(StrEnum):
    """Machine-readable error codes; stable strings that tests and the UI may match on."""

    UNAVAILABLE = "backend_unavailable"
    TIMEOUT = "timeout"
    RATE_LIMITED = "rate_limited"
    AUTHENTICATION = "authentication"
    NOT_FOUND = "not_found"
    INVALID_REQUEST = "invalid_request"
    SERVER_ERROR = "server_error"
    PROTOCOL = "protocol_error"
    JOB_FAILED = "job_failed"
    CANCELLED = "cancelled"
    OFFLINE = "online_access_disabled"
    STORAGE = "output_folder"
    INTERNAL = "internal_error"


_secrets_lock = threading.Lock()
#: Longest first: a secret that is part of a longer one (a key pasted in pieces) must not break the longer one up.
_secrets: tuple[str, ...] = ()
REDACTED = "***"


def register_secret(secret: str | None) -> None:
    """Remember a secret (an API key) so that :func:`redact` scrubs it from all text from now on."""
    global _secrets
    if not secret or len(secret) < 4:
        return
    with _secrets_lock:
        if secret not in _secrets:
            _secrets = tuple(sorted({*_secrets, secret}, key=len, reverse=True))


def redact(text: str) -> str:
    """Return ``text`` with every registered secret replaced by ``***``.

    The one home of redaction: clients, the runtime's job logs, progress text and the journal all call this (or
    :func:`redact_data` / :func:`excerpt`)."""
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def excerpt(text: str | bytes, limit: int = 200) -> str:
    """The first ``limit`` characters of ``text`` *after* redaction (a key cut in half by the limit would survive
    a redaction done afterwards). Bytes are decoded as UTF-8 with replacement."""
    if isinstance(text, bytes):
        text = text[: max(limit, 0) * 4 + 4096].decode("utf-8", "replace")  # bounded, and long enough for a key
    text = redact(text)
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"


#: Structure kept from server data in an error's details: deeper levels and longer containers are summarised, so
#: an answer nested 300 deep can neither overflow the stack nor stop the journal from recording the error.
MAX_DETAIL_DEPTH = 12
MAX_DETAIL_ITEMS = 200
MAX_DETAIL_TEXT = 4000


def redact_data(value: Any, _depth: int = 0) -> Any:
    """Plain data with every secret scrubbed from every string (keys too), bounded in depth, length and text size;
    what is not plain data becomes its (redacted) ``repr``."""
    if isinstance(value, str):
        return redact(value)[:MAX_DETAIL_TEXT]
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if _depth >= MAX_DETAIL_DEPTH:
        return "…(nested too deeply)"
    if isinstance(value, Mapping):
        items = list(value.items())[:MAX_DETAIL_ITEMS]
        return {redact(str(k))[:200]: redact_data(v, _depth + 1) for k, v in items}
    if isinstance(value, (list, tuple)):
        return [redact_data(v, _depth + 1) for v in list(value)[:MAX_DETAIL_ITEMS]]
    return redact(repr(value))[:MAX_DETAIL_TEXT]


class MovieDirectorError(Exception):
    """Base of every error the runtime and the clients raise."""

    code: ErrorCode = ErrorCode.INTERNAL
    retryable: bool = False
    hint: str = ""

    def __init__(
        self,
        message: str,
        *,
        backend: str = "",
        status: int | None = None,
        details: Mapping[str, Any] | None = None,
        hint: str | None = None,
        retryable: bool | None = None,
    ) -> None:
        self.message = redact(message)
        self.backend = backend
        self.status = status
        self.details: dict[str, Any] = redact_data(dict(details or {}))
        if hint is not None:
            self.hint = redact(hint)
        if retryable is not None:
            self.retryable = retryable
        super().__init__(self.message)

    def __str__(self) -> str:
        """``backend: message (HTTP status). Hint.`` The message is quoted as it is: a full stop is added only when
        it does not already end a sentence, and nothing in it is ever rewritten."""
        where = f"{self.backend}: " if self.backend else ""
        text = self.message.rstrip()
        if self.status:
            text = f"{text} (HTTP {self.status})"
        if text and not text.endswith((".", "!", "?", "…")):
            text += "."
        hint = f" {self.hint}" if self.hint else ""
        return f"{where}{text}{hint}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(code={self.code.value!r}, backend={self.backend!r}, "
            f"status={self.status!r}, message={self.message!r})"
        )

    def to_dict(self) -> dict[str, Any]:
        """The error as plain data, the shape a job's ``error`` field stores."""
        return {
            "code": self.code.value,
            "message": str(self),
            "retryable": self.retryable,
            "details": dict(self.details),
        }


class BackendUnavailableError(MovieDirectorError):
    code = ErrorCode.UNAVAILABLE
    retryable = True
    hint = "Check that the server is running and that its URL in the Movie Director preferences is right."


class RequestTimeoutError(MovieDirectorError):
    code = ErrorCode.TIMEOUT
    retryable = True
    hint = "The server is slow or stuck; try again, or raise the timeout in the preferences."


class RateLimitedError(MovieDirectorError):
    code = ErrorCode.RATE_LIMITED
    retryable = True
    hint = "The server asked us to slow down; the job can be retried in a moment."

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after
        if retry_after is not None:
            self.details.setdefault("retry_after", retry_after)


class AuthenticationError(MovieDirectorError):
    code = ErrorCode.AUTHENTICATION
    hint = "Check the API key in the Movie Director preferences."


class NotFoundError(MovieDirectorError):
    code = ErrorCode.NOT_FOUND
    hint = "The server does not have what was asked for; check the model or file name."


class InvalidRequestError(MovieDirectorError):
    code = ErrorCode.INVALID_REQUEST
    hint = "Change the request's settings and try again."


class ServerError(MovieDirectorError):
    code = ErrorCode.SERVER_ERROR
    retryable = True
    hint = "The server failed; its own log says why."


class ProtocolError(MovieDirectorError):
    code = ErrorCode.PROTOCOL
    hint = "The server sent something Movie Director cannot read; check that its version is supported."


class OnlineAccessError(MovieDirectorError):
    code = ErrorCode.OFFLINE
    hint = (
        "Blender's online access is off. Allow it in Preferences > System > Network, "
        "or use a server on this computer (localhost)."
    )


class OutputFolderError(MovieDirectorError):
    """Writing on this computer failed (full disk, no permission): not the server's fault, and retrying the same
    job does not help until the user acts."""

    code = ErrorCode.STORAGE
    hint = "Free some space there, or choose another output folder in the Movie Director preferences."


class JobFailedError(MovieDirectorError):
    code = ErrorCode.JOB_FAILED


class JobCancelledError(MovieDirectorError):
    code = ErrorCode.CANCELLED
    hint = ""


_BY_CODE: dict[str, type[MovieDirectorError]] = {
    cls.code.value: cls
    for cls in (
        BackendUnavailableError,
        RequestTimeoutError,
        RateLimitedError,
        AuthenticationError,
        NotFoundError,
        InvalidRequestError,
        ServerError,
        ProtocolError,
        OnlineAccessError,
        OutputFolderError,
        JobFailedError,
        JobCancelledError,
    )
}

#: errno values that mean "the disk (or the user's quota) is full".
_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}


def _is_full(exc: OSError) -> bool:
    return exc.errno in _FULL


def local_write_error(exc: OSError, folder: str, *, backend: str = "") -> MovieDirectorError:
    """An OSError raised while *we* wrote into ``folder`` (never retryable: it is this computer, not the server)."""
    if _is_full(exc):
        return OutputFolderError(f"The output folder {folder} is full", backend=backend, retryable=False)
    reason = exc.strerror or type(exc).__name__
    return OutputFolderError(
        f"Cannot write into the output folder {folder}: {reason}", backend=backend, retryable=False
    )


def error_from_exception(exc: BaseException, *, backend: str = "") -> MovieDirectorError:
    """Any exception as a MovieDirectorError: ours pass through; a missing or unreadable local file is an invalid
    request naming the file, a full disk an :class:`OutputFolderError`; anything else an internal error."""
    if isinstance(exc, MovieDirectorError):
        return exc
    if isinstance(exc, OSError) and exc.filename is not None and not isinstance(exc, ConnectionError):
        name = str(exc.filename)
        if _is_full(exc):
            return local_write_error(exc, os.path.dirname(name) or name, backend=backend)
        if isinstance(exc, FileNotFoundError):
            return InvalidRequestError(f"The file {name} does not exist", backend=backend, hint="Choose another file.")
        if isinstance(exc, (PermissionError, IsADirectoryError, NotADirectoryError)):
            reason = exc.strerror or type(exc).__name__
            return InvalidRequestError(f"Cannot read {name}: {reason}", backend=backend, hint="Choose another file.")
    if isinstance(exc, OSError) and _is_full(exc):
        return OutputFolderError("The disk is full", backend=backend, retryable=False)
    return MovieDirectorError(f"Unexpected error: {type(exc).__name__}: {exc}", backend=backend)


def error_class_for_code(code: str) -> type[MovieDirectorError]:
    """The error class whose ``code`` is ``code`` (the base class for unknown codes)."""
    return _BY_CODE.get(code, MovieDirectorError)


def parse_retry_after(headers: Mapping[str, str], *, cap: float = 120.0, now: float | None = None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date), capped at ``cap``.

    Returns None when the headers say nothing usable, as openai-python does.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    raw_ms = lowered.get("retry-after-ms")
    if raw_ms is not None:
        try:
            value = float(raw_ms) / 1000.0
            if math.isfinite(value) and value >= 0:
                return min(value, cap)
        except ValueError:
            pass
    raw = lowered.get("retry-after")
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        import email.utils  # only for an HTTP-date Retry-After: a 12 ms import kept out of add-on registration

        parsed = email.utils.parsedate_tz(raw)
        if parsed is None:
            return None
        value = email.utils.mktime_tz(parsed) - (time.time() if now is None else now)
    if not math.isfinite(value) or value < 0:
        return None
    return min(value, cap)


def positive_number(name: str, value: Any, *, backend: str = "", unit: str = "") -> float:
    """``value`` as a finite number above 0, else an :class:`InvalidRequestError` naming the parameter and its range
    (a negative length must be refused, not rounded into a one-frame clip)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number) or number <= 0:
        what = f" {unit}" if unit else ""
        raise InvalidRequestError(f"{name} must be a number above 0{what} (got {value!r})", backend=backend)
    return number


def error_for_status(
    status: int,
    message: str,
    *,
    backend: str,
    headers: Mapping[str, str] | None = None,
    details: Mapping[str, Any] | None = None,
) -> MovieDirectorError:
    """Map an HTTP error status onto the hierarchy."""
    kwargs: dict[str, Any] = {"backend": backend, "status": status, "details": details}
    if status in (401, 403):
        return AuthenticationError(message, **kwargs)
    if status == 404:
        return NotFoundError(message, **kwargs)
    if status == 408:
        return RequestTimeoutError(message, **kwargs)
    if status == 429:
        return RateLimitedError(message, retry_after=parse_retry_after(headers or {}), **kwargs)
    if status == 409:
        return ServerError(message, retryable=True, **kwargs)
    if status >= 500:
        return ServerError(message, **kwargs)
    return InvalidRequestError(message, **kwargs)
