"""URL checks that the preferences need at draw/update time: kept free of heavy imports (no pydantic, no aiohttp).

Plain Python: this module never imports bpy.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit


def validate_url(url: str) -> str:
    """Accept http(s)/ws(s) URLs with a host; refuse anything else with a message that says what is wrong."""
    url = url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https", "ws", "wss") or not parts.hostname:
        raise ValueError(f"{url!r} is not a server URL; write it like http://127.0.0.1:8188")
    try:
        _ = parts.port  # urlsplit checks the port only when asked
    except ValueError as exc:
        raise ValueError(f"{url!r} has an invalid port") from exc
    return url


def is_loopback(url: str) -> bool:
    """True for localhost and the loopback ranges, which never need Blender's online access."""
    host = (urlsplit(url).hostname or "").lower()
    if host in ("localhost", "localhost.localdomain") or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def split_urls(text: str) -> tuple[str, ...]:
    """URLs typed in one field, separated by spaces or commas."""
    return tuple(u for u in text.replace(",", " ").split() if u)
