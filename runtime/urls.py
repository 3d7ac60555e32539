"""URL checks that the preferences need at draw/update time: kept free of heavy imports (no pydantic, no aiohttp).

Plain Python: this module never imports bpy.
"""

from __future__ import annotations

import functools
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
    """True for localhost, the loopback ranges and the unspecified addresses ``0.0.0.0``/``::`` (connecting to
    those reaches this computer, and servers print them as their address), which never need online access.

    The one test of "this computer" that every check uses: the online-access policy, each redirect hop, downloads.
    """
    host = (urlsplit(url).hostname or "").lower()
    if host in ("localhost", "localhost.localdomain") or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1 is 127.0.0.1
    if mapped is not None:
        address = mapped
    return address.is_loopback or address.is_unspecified


_DEFAULT_PORTS = {"http": 80, "https": 443}
_SCHEMES = {"ws": "http", "wss": "https"}


@functools.lru_cache(maxsize=512)  # every request and redirect hop asks, always about the same few servers
def origin(url: str) -> tuple[str, str, int]:
    """``(scheme, host, port)`` of a URL, a websocket counted as the HTTP(S) server it upgrades from.

    >>> origin("ws://LOCALHOST:8188/ws") == origin("http://localhost:8188/")
    True
    """
    parts = urlsplit(url)
    scheme = _SCHEMES.get(parts.scheme.lower(), parts.scheme.lower())
    try:
        port = parts.port
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower(), port or _DEFAULT_PORTS.get(scheme, 0)


def same_origin(url: str, other: str) -> bool:
    """Whether two URLs name the same server (scheme, host and port)."""
    return origin(url) == origin(other)


def split_urls(text: str) -> tuple[str, ...]:
    """URLs typed in one field, separated by spaces or commas."""
    return tuple(u for u in text.replace(",", " ").split() if u)
