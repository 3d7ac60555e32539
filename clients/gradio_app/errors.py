"""gradio_client's and httpx's exceptions, mapped onto the shared error hierarchy with words a film-maker can act on.

Plain Python: this module never imports bpy.
"""

from __future__ import annotations

import concurrent.futures

import httpx
from gradio_client import exceptions as gc_exceptions
from gradio_client import utils as gc_utils

from ...runtime.errors import (
    AuthenticationError,
    BackendUnavailableError,
    InvalidRequestError,
    JobFailedError,
    MovieDirectorError,
    NotFoundError,
    ProtocolError,
    RateLimitedError,
    RequestTimeoutError,
    error_for_status,
    redact,
)
from .compat import ForeignHostError, TooOldError

_NO_DETAILS = "has not enabled verbose error reporting"


def _text(exc: BaseException, limit: int = 300) -> str:
    return redact(str(exc).strip())[:limit]


def map_exception(exc: BaseException, *, url: str, backend: str) -> MovieDirectorError:
    """One exception from gradio_client (connecting, submitting or running a prediction) as a MovieDirectorError."""
    if isinstance(exc, MovieDirectorError):
        return exc
    if isinstance(exc, gc_exceptions.AppError):
        message = _text(exc, 1000) or "the app reported an error"
        if _NO_DETAILS in message:
            return JobFailedError(
                f"The app at {url} failed without saying why",
                backend=backend,
                hint="Its console shows the error (start it with show_error=True to see it here).",
            )
        return JobFailedError(message, backend=backend, details={"title": getattr(exc, "title", "Error")}, hint="")
    if isinstance(exc, gc_exceptions.ValidationError):
        return InvalidRequestError(f"The app refused the inputs: {_text(exc)}", backend=backend)
    if isinstance(exc, gc_exceptions.AuthenticationError):
        return AuthenticationError(f"{url} needs a login: {_text(exc)}", backend=backend)
    if isinstance(exc, gc_utils.QueueError):
        return RateLimitedError(f"The queue of the app at {url} is full", backend=backend, status=503)
    if isinstance(exc, gc_utils.TooManyRequestsError):
        return RateLimitedError(f"{url} says there are too many requests", backend=backend, status=429)
    if isinstance(exc, gc_utils.InvalidAPIEndpointError):
        return NotFoundError(f"{url} does not allow calls to that endpoint", backend=backend)
    if isinstance(exc, TooOldError):
        return ProtocolError(
            f"{url} runs {exc}", backend=backend, hint="Update the app's Gradio, or use a newer version of the app."
        )
    if isinstance(exc, ForeignHostError):
        return ProtocolError(
            f"The app at {url} was refused: {exc}",
            backend=backend,
            hint="Movie Director only talks to the server set in its preferences; set the app's own address there.",
        )
    if isinstance(exc, httpx.HTTPStatusError):
        status = exc.response.status_code
        return error_for_status(status, f"{url} answered {status} {exc.response.reason_phrase}", backend=backend)
    if isinstance(exc, httpx.TimeoutException):
        return RequestTimeoutError(f"{url} stopped answering ({type(exc).__name__})", backend=backend)
    if isinstance(exc, (httpx.TransportError, ConnectionError)):
        return BackendUnavailableError(
            f"Cannot reach {url}: {type(exc).__name__} {_text(exc)}".strip(), backend=backend
        )
    if isinstance(exc, concurrent.futures.CancelledError):
        # gradio_client ends a prediction this way when its event stream closes without a result.
        return BackendUnavailableError(
            f"The connection to {url} broke while the job ran (did the app stop or restart?)", backend=backend
        )
    if isinstance(exc, ValueError) and "Server stopped" in str(exc):
        return BackendUnavailableError(f"The app at {url} stopped while the job ran", backend=backend)
    if isinstance(exc, ValueError) and ("config" in str(exc) or "api info" in str(exc)):
        return ProtocolError(
            f"{url} does not look like a Gradio app: {_text(exc)}",
            backend=backend,
            hint="Check the server URL in the Movie Director preferences.",
        )
    if isinstance(exc, KeyError):
        return ProtocolError(
            f"The app at {url} ended the job without a result (was it cancelled there?)", backend=backend
        )
    if isinstance(exc, (ValueError, TypeError)) and ("argument" in str(exc) or "Parameter" in str(exc)):
        return InvalidRequestError(f"The inputs do not fit the app's endpoint: {_text(exc)}", backend=backend)
    return ProtocolError(
        f"Unexpected failure talking to {url}: {type(exc).__name__}: {_text(exc)}",
        backend=backend,
        hint="Check that the app is a supported Gradio version; its console may say more.",
    )
