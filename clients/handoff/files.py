"""Writing a hand-off file whole or not at all: to a temporary name beside it, renamed when complete.

Plain Python: this module never imports bpy.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .errors import HandoffError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A temporary path in ``path``'s folder (same extension, so writers that pick a format by it still do);
    renamed to ``path`` when the block ends without an error, removed otherwise."""
    target = Path(path)
    if not target.parent.is_dir():
        raise HandoffError(f"The folder {target.parent} does not exist")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=f".part{target.suffix}", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)
