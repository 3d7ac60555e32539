"""A small TTL cache for discovery calls (ComfyUI's node catalogue, model and voice lists), in memory and on disk.

Plain Python: this module never imports bpy. Used on the loop thread. On disk each entry is one JSON file named by a
hash of its key, written atomically, so a restarted Blender shows the last known lists at once (no network in draw
code) while a refresh goes out in the background. ``refresh=True`` always asks the server again.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


class TtlCache:
    def __init__(self, folder: str | Path | None = None, ttl: float = 600.0) -> None:
        self.folder = Path(folder) if folder else None
        self.ttl = ttl
        self._memory: dict[str, tuple[float, Any]] = {}
        self._inflight: dict[str, asyncio.Future[Any]] = {}

    def _file(self, key: str) -> Path | None:
        if self.folder is None:
            return None
        return self.folder / (hashlib.sha256(key.encode()).hexdigest()[:32] + ".json")

    def get(self, key: str, ttl: float | None = None) -> Any | None:
        """The cached value if it is younger than ``ttl`` (the cache's default), else None."""
        limit = self.ttl if ttl is None else ttl
        entry = self._memory.get(key)
        if entry is None:
            entry = self._load(key)
        if entry is None or time.time() - entry[0] > limit:
            return None
        return entry[1]

    def put(self, key: str, value: Any) -> None:
        entry = (time.time(), value)
        self._memory[key] = entry
        path = self._file(key)
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".cache-", dir=path.parent)
            with os.fdopen(fd, "w") as fh:
                json.dump({"key": key, "at": entry[0], "value": value}, fh)
            os.replace(tmp, path)
        except (OSError, TypeError, ValueError):  # a cache that cannot write is only slower
            pass

    def _load(self, key: str) -> tuple[float, Any] | None:
        path = self._file(key)
        if path is None or not path.exists():
            return None
        try:
            data = json.loads(path.read_text())
            if data.get("key") != key:
                return None
            entry = (float(data["at"]), data["value"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        self._memory[key] = entry
        return entry

    def invalidate(self, key: str | None = None) -> None:
        """Forget one entry, or everything."""
        keys = [key] if key is not None else list(self._memory)
        for k in keys:
            self._memory.pop(k, None)
            path = self._file(k)
            if path is not None:
                path.unlink(missing_ok=True)

    async def get_or_fetch(
        self, key: str, fetch: Callable[[], Awaitable[T]], *, refresh: bool = False, ttl: float | None = None
    ) -> T:
        """The cached value, or ``await fetch()`` (once, however many callers ask at the same time)."""
        if not refresh:
            value = self.get(key, ttl)
            if value is not None:
                return value  # type: ignore[no-any-return]
        pending = self._inflight.get(key)
        if pending is not None:
            return await asyncio.shield(pending)  # type: ignore[no-any-return]
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            value = await fetch()
        except BaseException as exc:
            future.set_exception(exc if isinstance(exc, Exception) else RuntimeError("fetch cancelled"))
            future.exception()
            raise
        finally:
            self._inflight.pop(key, None)
        self.put(key, value)
        future.set_result(value)
        return value
