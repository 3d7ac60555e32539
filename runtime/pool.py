"""The backends' clients: built on the loop on first use, rebuilt when settings change, closed side by side at stop.

Plain Python: this module never imports bpy. Loop thread only, except :meth:`ClientPool.set_state`, which any thread
may call; connection states reach the UI as ``backend_state`` events through the outbox.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from .backend import BackendClient, BackendConfig, HealthInfo, NetworkPolicy
from .cache import TtlCache
from .errors import InvalidRequestError, MovieDirectorError, redact
from .outbox import Outbox, RuntimeEvent

log = logging.getLogger(__name__)

ClientFactory = Callable[[BackendConfig, NetworkPolicy], BackendClient]


class ClientPool:
    def __init__(self, outbox: Outbox, network: NetworkPolicy, cache: TtlCache) -> None:
        self.outbox = outbox
        self.network = network
        self.cache = cache
        self.factories: dict[str, ClientFactory] = {}
        self.configs: dict[str, BackendConfig] = {}
        self.backend_states: dict[str, tuple[str, str]] = {}
        self._clients: dict[str, BackendClient] = {}

    def forget(self) -> None:
        """After the loop stopped (the clients were closed by :meth:`close_clients`)."""
        self._clients.clear()

    # --- clients --------------------------------------------------------------------------------------------------
    def client(self, name: str) -> BackendClient:
        """The backend's client; built on first use."""
        client = self._clients.get(name)
        if client is None:
            if name not in self.factories:
                raise InvalidRequestError(f"Unknown backend {name!r}", hint="Register it with register_backend().")
            client = self._clients[name] = self.factories[name](self.configs[name], self.network)

            def report(state: str, message: str = "", backend: str = name) -> None:
                self.set_state(backend, state, message)

            client.report_state = report
            client.cache = self.cache
        return client

    def retire(self, name: str) -> None:
        """New settings: the next job builds a fresh client; the old one is closed in the background."""
        old = self._clients.pop(name, None)
        if old is not None:
            asyncio.get_running_loop().create_task(old.close())

    async def close_clients(self) -> None:
        """Close every client at once (a slow one cannot starve the others); the loop's stop bounds the time and
        cancels what is left."""
        clients, self._clients = list(self._clients.values()), {}

        async def close(client: BackendClient) -> None:
            try:
                await client.close()
            except Exception:
                log.exception("closing %s failed", client.name)

        tasks = [asyncio.ensure_future(close(c)) for c in clients]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()

    def set_state(self, name: str, state: str, message: str = "") -> None:
        """Record a backend's connection state (any thread) and tell subscribers when it changed."""
        message = redact(message)
        if self.backend_states.get(name) == (state, message):
            return
        # Copy on write: the home thread reads whichever whole dict is current, never one being changed.
        self.backend_states = {**self.backend_states, name: (state, message)}
        self.outbox.notice(RuntimeEvent("backend_state", backend=name, state=state, message=message))

    async def health(self, name: str, timeout: float) -> HealthInfo:
        self.set_state(name, "connecting")
        try:
            async with asyncio.timeout(timeout):
                info = await self.client(name).health()
        except TimeoutError:
            info = HealthInfo(ok=False, message=f"no answer within {timeout:.0f} s")
        except MovieDirectorError as exc:
            info = HealthInfo(ok=False, message=str(exc))
        except Exception as exc:  # a broken client must still answer "not connected", never hang the button
            log.exception("health check of %s crashed", name)
            info = HealthInfo(ok=False, message=f"{type(exc).__name__}: {exc}")
        self.set_state(name, "connected" if info.ok else "disconnected", info.message)
        return info
