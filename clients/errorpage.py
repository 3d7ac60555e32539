"""Error answers that are web pages (a reverse proxy's 502, a plain server's 501) turned into one readable line.

Plain Python: this module never imports bpy. An nginx or framework error page is markup; a film-maker should read
"HTTP 502 from 127.0.0.1:4000: Bad Gateway", never the HTML. Only the page's title (or first heading) is kept,
unescaped and shortened; nothing else of the page reaches a message.
"""

from __future__ import annotations

import html
import re
from urllib.parse import urlsplit

from ..runtime.errors import excerpt

_TITLE = re.compile(rb"<title[^>]*>(.*?)</title\s*>", re.I | re.S)
_HEADING = re.compile(rb"<h1[^>]*>(.*?)</h1\s*>", re.I | re.S)
_TAG = re.compile(r"<[^>]*>")
MAX_TITLE = 120


def is_html(body: bytes, content_type: str = "") -> bool:
    """Whether an answer is a web page (by its type, or by how it starts when the type is missing or wrong)."""
    if "html" in content_type.lower():
        return True
    head = body[:512].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html", b"<head", b"<body")) or b"<title" in head


def page_title(body: bytes) -> str:
    """The page's title, else its first heading, as plain text ('' when it has neither).

    >>> page_title(b"<html><head><title>502 Bad Gateway</title></head><body>...</body></html>")
    '502 Bad Gateway'
    >>> page_title(b"<h1>Error &amp; more</h1>")
    'Error & more'
    """
    for pattern in (_TITLE, _HEADING):
        found = pattern.search(body[:65536])
        if found:
            text = found.group(1).decode("utf-8", "replace")
            text = " ".join(html.unescape(_TAG.sub(" ", text)).split())
            if text:
                return excerpt(text, MAX_TITLE)  # redacted, then cut
    return ""


def server_name(url: str) -> str:
    """``host:port`` of a server URL (no path, no credentials)."""
    parts = urlsplit(url)
    host = parts.hostname or url
    return f"{host}:{parts.port}" if parts.port else host


def page_message(status: int, body: bytes, url: str, content_type: str = "") -> str | None:
    """ "HTTP 502 from host:port: <title>" when the answer is a web page, else None (read it as the API's error)."""
    if not is_html(body, content_type):
        return None
    title = page_title(body) or "an error page"
    return f"HTTP {status} from {server_name(url)}: {title}"
