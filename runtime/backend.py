"""The contract every backend client fulfils, and the settings it is built from.

Plain Python: this module never imports bpy. The runtime drives a job as ``submit`` -> ``get_result`` and calls
``cancel`` when the user asks; ``get_status`` answers "where is it on the server" for reconciliation, and ``health``
backs the sidebar's "test connection" button. Clients are created on the loop thread and closed at stop.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from .cache import TtlCache
from .errors import InvalidRequestError, OnlineAccessError
from .jobs import Job, JobOutputs, JobState
from .retry import RetryPolicy
from .urls import is_loopback, validate_url

if TYPE_CHECKING:
    from .context import JobContext


_SECRET_WORDS = ("key", "token", "secret", "password")


class BackendConfig(BaseModel):
    """One backend's settings, as the preferences (or a script) give them. The key never shows in a repr."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    name: str
    urls: tuple[str, ...] = ()
    api_key: SecretStr | None = None
    concurrency: int = Field(default=1, ge=1, le=64)
    timeout: float = Field(default=600.0, gt=0)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("urls", mode="before")
    @classmethod
    def _split_urls(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [u for u in value.replace(",", " ").split() if u]
        return tuple(validate_url(u) for u in value)

    @field_validator("api_key", mode="before")
    @classmethod
    def _strip_key(cls, value: Any) -> Any:
        """A key pasted with a newline or spaces around it is the key without them."""
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if isinstance(value, str):
            return value.strip() or None
        return value

    @property
    def url(self) -> str:
        if not self.urls:
            raise InvalidRequestError(
                "No server URL is set", backend=self.name, hint="Add one in the Movie Director preferences."
            )
        return self.urls[0]

    def key(self) -> str | None:
        return self.api_key.get_secret_value() if self.api_key else None

    def secrets(self) -> list[str]:
        """Every secret these settings hold: the key, and any option named like one (a token, a password)."""
        found = [self.key() or ""]
        for name, value in self.options.items():
            if isinstance(value, str) and len(value) >= 8 and any(w in name.lower() for w in _SECRET_WORDS):
                found.append(value)
        return [s.strip() for s in found if s.strip()]


class NetworkPolicy:
    """Blender's ``bpy.app.online_access``, copied in by the Blender bridge (plain Python cannot read bpy)."""

    def __init__(self, online_access: bool = True) -> None:
        self.online_access = online_access

    def check(self, url: str, backend: str) -> None:
        if not self.online_access and not is_loopback(url):
            raise OnlineAccessError(f"Cannot reach {urlsplit(url).hostname}: online access is off", backend=backend)


class HealthInfo(BaseModel):
    ok: bool
    url: str = ""
    message: str = ""
    version: str = ""
    latency_ms: float | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class RemoteStatus(BaseModel):
    """Where a job stands on its server, for reconciliation after a reconnect or a restart."""

    state: JobState | None = None  # None = the server does not know the job (lost)
    fraction: float | None = None
    message: str = ""


class BackendClient(abc.ABC):
    """Base of all backend clients. Subclasses implement the five verbs; the runtime calls them on the loop."""

    name: str = "backend"

    def __init__(self, config: BackendConfig, network: NetworkPolicy | None = None) -> None:
        self.config = config
        self.network = network or NetworkPolicy()
        #: ``report_state(state, message)``: the runtime sets this so a client can say it connected, lost its
        #: server or is reconnecting; the sidebar and event subscribers hear of it.
        self.report_state: Callable[[str, str], None] = lambda state, message: None
        #: Discovery results (node catalogues, model and voice lists): the runtime shares its own, on disk.
        self.cache = TtlCache()

    @abc.abstractmethod
    async def submit(self, job: Job, ctx: JobContext) -> str | None:
        """Send the job to a server; return the server's id for it (or None when it has none)."""

    @abc.abstractmethod
    async def get_result(self, job: Job, ctx: JobContext) -> JobOutputs:
        """Wait for the submitted job to finish (reporting progress on ``ctx``) and return its outputs."""

    async def get_status(self, job: Job) -> RemoteStatus:
        """Ask the server where the job stands. Backends that cannot tell say so with ``state=None``."""
        return RemoteStatus(state=None, message="this backend cannot report job status")

    async def resume(self, job: Job, ctx: JobContext) -> JobOutputs:
        """Pick up a job that was submitted or running when Movie Director last stopped (from the journal).

        The default asks the server where the job stands: unknown -> it was lost (fail, retryable); failed ->
        fail; otherwise follow it to its end with :meth:`get_result`. Clients whose ``get_result`` needs state
        from ``submit`` override this."""
        from .errors import JobFailedError

        status = await self.get_status(job)
        if status.state is None:
            why = status.message or "it was lost while Movie Director was closed"
            raise JobFailedError(
                f"The server no longer knows this job ({why})",
                backend=self.name,
                retryable=True,
            )
        if status.state in (JobState.FAILED, JobState.CANCELLED):
            raise JobFailedError(f"The job ended {status.state.value} on the server while Movie Director was closed")
        return await self.get_result(job, ctx)

    async def cancel(self, job: Job) -> None:  # noqa: B027 - a backend without server-side cancel keeps this no-op
        """Ask the server to stop the job. The runtime has already cancelled it locally."""

    @abc.abstractmethod
    async def health(self) -> HealthInfo:
        """Check that the server answers; never raises for an unreachable server, says so in the result."""

    async def close(self) -> None:  # noqa: B027 - clients without resources need nothing here
        """Release sessions and sockets."""


async def timed(coro: Any) -> tuple[Any, float]:
    """Await ``coro`` and return ``(result, milliseconds)``."""
    start = time.perf_counter()
    result = await coro
    return result, (time.perf_counter() - start) * 1000.0
