from __future__ import annotations

import asyncio
from pathlib import Path

from movie_director.runtime.cache import TtlCache


def test_values_expire_refresh_forces_a_fetch_and_concurrent_askers_share_one(tmp_path: Path) -> None:
    calls: list[int] = []

    async def fetch() -> dict[str, int]:
        calls.append(1)
        await asyncio.sleep(0.01)
        return {"n": len(calls)}

    async def scenario() -> None:
        cache = TtlCache(tmp_path, ttl=60)
        results = await asyncio.gather(*(cache.get_or_fetch("k", fetch) for _ in range(5)))
        assert results == [{"n": 1}] * 5 and len(calls) == 1
        assert await cache.get_or_fetch("k", fetch) == {"n": 1}
        assert await cache.get_or_fetch("k", fetch, refresh=True) == {"n": 2}
        assert cache.get("k", ttl=0) is None  # older than a zero TTL

    asyncio.run(scenario())


def test_the_disk_copy_survives_a_restart_and_can_be_invalidated(tmp_path: Path) -> None:
    TtlCache(tmp_path).put("models", ["a", "b"])
    again = TtlCache(tmp_path)
    assert again.get("models") == ["a", "b"]
    again.invalidate("models")
    assert TtlCache(tmp_path).get("models") is None
    (tmp_path / "junk.json").write_text("{not json")
    assert TtlCache(tmp_path).get("junk") is None
