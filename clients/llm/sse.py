"""An incremental Server-Sent Events decoder, exact whatever the network chunking.

Plain Python: this module never imports bpy. It follows the WHATWG ``text/event-stream`` rules: lines end in CR, LF or
CRLF; ``:`` starts a comment; ``data`` lines of one event are joined with ``\\n``; a blank line dispatches the event.
Bytes are split into lines *before* UTF-8 decoding (line ends are ASCII and never occur inside a multibyte
character), and a CR at the very end of one chunk remembers to swallow an LF at the start of the next, so the events
are the same however the bytes were cut. Lines and events are bounded: a server cannot make us buffer without end.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from ...runtime.errors import ProtocolError

#: Longest line we buffer while waiting for its end (a chat chunk is a few hundred bytes).
MAX_LINE_BYTES = 1024 * 1024
#: Largest event (all its data lines together).
MAX_EVENT_BYTES = 4 * 1024 * 1024
_BOM = b"\xef\xbb\xbf"


class SseEvent(NamedTuple):
    """One dispatched event (a named tuple: one is built per streamed token)."""

    data: str
    event: str = "message"
    id: str | None = None
    retry: int | None = None


class SseDecoder:
    """``feed(bytes) -> list[SseEvent]`` as bytes arrive; ``close()`` at the end of the stream.

    An event cut off by the end of the stream is dropped, as the standard says; ``truncated`` tells that it happened
    (a chat client treats it as a connection cut off mid-answer).
    """

    __slots__ = (
        "_buf",
        "_data",
        "_event",
        "_id",
        "_retry",
        "_size",
        "_skip_lf",
        "_started",
        "backend",
        "last_event_id",
        "max_event_bytes",
        "max_line_bytes",
        "truncated",
    )

    def __init__(
        self, *, max_line_bytes: int = MAX_LINE_BYTES, max_event_bytes: int = MAX_EVENT_BYTES, backend: str = ""
    ) -> None:
        self.max_line_bytes = max_line_bytes
        self.max_event_bytes = max_event_bytes
        self.backend = backend
        self.truncated = False
        self.last_event_id: str | None = None
        self._buf = b""
        self._skip_lf = False
        self._started = False
        self._data: list[str] = []
        self._size = 0
        self._event = ""
        self._id: str | None = None
        self._retry: int | None = None

    def feed(self, chunk: bytes) -> list[SseEvent]:
        """Decode the next bytes; returns the events they completed (often none or one)."""
        if not chunk:
            return []
        buf = self._buf + chunk if self._buf else chunk
        if not self._started:
            if len(buf) < 3 and _BOM.startswith(buf):
                self._buf = buf
                return []
            self._started = True
            if buf.startswith(_BOM):
                buf = buf[3:]
        pos = 0
        end = len(buf)
        if self._skip_lf and end:
            self._skip_lf = False
            if buf[0] == 0x0A:
                pos = 1
        events: list[SseEvent] = []
        if b"\r" not in buf:  # the usual stream, LF line ends only: split at C speed
            last = buf.rfind(b"\n")
            if last >= pos:
                self._lines(buf[pos:last].split(b"\n"), events)
                pos = last + 1
            end = pos  # nothing left for the general loop below
        find = buf.find
        while pos < end:
            lf = find(b"\n", pos)
            cr = find(b"\r", pos, lf if lf >= 0 else end)
            if cr >= 0:
                nxt = cr + 1
                if nxt < end:
                    if buf[nxt] == 0x0A:
                        nxt += 1
                else:
                    self._skip_lf = True
                self._lines((buf[pos:cr],), events)
            elif lf >= 0:
                nxt = lf + 1
                self._lines((buf[pos:lf],), events)
            else:
                break
            pos = nxt
        rest = buf[pos:] if pos else buf
        if len(rest) > self.max_line_bytes:
            raise ProtocolError(
                f"The server sent a stream line longer than {self.max_line_bytes} bytes", backend=self.backend
            )
        self._buf = rest
        return events

    def close(self) -> list[SseEvent]:
        """End of stream. A last line without its line end still counts; an event without its blank line does not."""
        events: list[SseEvent] = []
        if self._buf:
            buf, self._buf = self._buf, b""
            if self._started or not _BOM.startswith(buf):
                self._lines((buf,), events)
        self.truncated = bool(self._data)
        self._data, self._size, self._event = [], 0, ""
        return events

    def _lines(self, lines: Iterable[bytes], events: list[SseEvent]) -> None:
        """Whole lines, without their line ends (a chat stream is ``data: {...}`` and a blank line, over and over:
        those come first)."""
        limit = self.max_line_bytes
        for raw in lines:
            if not raw:
                if self._data:
                    events.append(SseEvent("\n".join(self._data), self._event or "message", self._id, self._retry))
                    self._data, self._size = [], 0
                self._event, self._retry = "", None
                continue
            if raw[0] == 0x3A:  # ":" a comment (keep-alive pings)
                continue
            if len(raw) > limit:
                raise ProtocolError(f"The server sent a stream line longer than {limit} bytes", backend=self.backend)
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ProtocolError("The server sent a stream line that is not UTF-8", backend=self.backend) from exc
            if line.startswith("data: "):
                name, value = "data", line[6:]
            else:
                name, colon, value = line.partition(":")
                if colon and value[:1] == " ":
                    value = value[1:]
            if name == "data":
                self._size += len(raw)
                if self._size > self.max_event_bytes:
                    raise ProtocolError(
                        f"The server sent a stream event larger than {self.max_event_bytes} bytes",
                        backend=self.backend,
                    )
                self._data.append(value)
            elif name == "event":
                self._event = value
            elif name == "id":
                if "\x00" not in value:
                    self._id = self.last_event_id = value
            elif name == "retry" and value.isascii() and value.isdigit():
                self._retry = int(value)
            # Unknown fields are ignored, as the standard says.
