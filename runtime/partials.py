"""Temporary files of downloads in flight: their name, and the sweep that removes those a killed process left.

Plain Python: this module never imports bpy. A download writes ``<job folder>/.part-XXXX`` and renames it into place
when complete; any error removes it at once, so only a process killed mid-download leaves one behind. The sweep runs
when a job resumes and when it ends (the runtime), and before the first download into a folder in a process (the
HTTP helpers), so no ``.part-*`` file outlives the job that made it.
"""

from __future__ import annotations

import os
from pathlib import Path

#: Prefix of a download's temporary file (dotted: hidden, and never a name a server can make us write).
PART_PREFIX = ".part-"


def remove_partials(folder: str | Path) -> int:
    """Delete every ``.part-*`` file directly in ``folder`` (links are removed, never followed); returns how many.
    A missing folder has none."""
    removed = 0
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if not entry.name.startswith(PART_PREFIX):
                    continue
                try:
                    if entry.is_file(follow_symlinks=False) or entry.is_symlink():
                        os.unlink(entry.path)
                        removed += 1
                except OSError:
                    pass
    except OSError:
        pass
    return removed
