"""One template catalogue per templates folder, shared by the sidebar (main thread) and the client (loop thread).

Plain Python: this module never imports bpy. :func:`catalog_for` returns the same :class:`TemplateCatalog` to every
caller until a ``.json`` file under the folder is added, removed or changed (checked by name, size and mtime, at most
every :data:`RECHECK_S` seconds); then a fresh catalogue is built and swapped in, so a changed folder takes effect at
once without a restart. A catalogue is never changed after it is built: readers on either thread see a whole one.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from .catalog import TemplateCatalog

#: How often a folder is looked at again for changed files.
RECHECK_S = 0.5

Signature = tuple[tuple[str, int, int], ...]

_lock = threading.Lock()
_catalogs: dict[str, tuple[Signature, float, TemplateCatalog]] = {}


def _signature(folder: Path | None) -> Signature:
    if folder is None or not folder.is_dir():
        return ()
    entries = []
    for path in folder.rglob("*.json"):
        try:
            st = path.stat()
        except OSError:
            continue
        entries.append((str(path), st.st_mtime_ns, st.st_size))
    return tuple(sorted(entries))


def catalog_for(folder: str | Path | None = None) -> TemplateCatalog:
    """The built-in templates plus those in ``folder`` (none when empty), rebuilt when the folder's files change."""
    path = Path(folder).expanduser() if folder else None
    key = str(path) if path else ""
    now = time.monotonic()
    with _lock:
        hit = _catalogs.get(key)
        if hit is not None and now - hit[1] < RECHECK_S:
            return hit[2]
        signature = _signature(path)
        if hit is not None and hit[0] == signature:
            _catalogs[key] = (signature, now, hit[2])
            return hit[2]
        catalog = TemplateCatalog(folders=[path] if path else [])
        _catalogs[key] = (signature, now, catalog)
        return catalog
