"""Which of a finished prompt's files to fetch, and the local name of each.

Plain Python: this module never imports bpy. A server names a file by ``(type, subfolder, filename)``; two SaveImage
nodes with different prefixes can both write ``img_00001_.png`` into subfolders ``a/`` and ``b/``. Every output gets
a distinct local name that is a function of that identity alone, so a resumed job finds its own earlier download of
that very output under the same name (and no other output's), and two outputs never share one file.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from ..http import safe_filename
from .protocol import FileRef


@dataclass(frozen=True, slots=True)
class PlannedOutput:
    node: str
    ref: FileRef
    #: The sanitised local file name (no folders), distinct among the job's outputs.
    name: str


def _identity(ref: FileRef) -> str:
    return f"{ref.type}\x00{ref.subfolder}\x00{ref.filename}"


def _readable_name(ref: FileRef) -> str:
    """``img.png`` for a file at the top of its folder, ``a_b_img.png`` for one in subfolder ``a/b``."""
    parts = [p for p in ref.subfolder.replace("\\", "/").split("/") if p and p not in (".", "..")]
    return safe_filename("_".join([*parts, ref.filename]))


def plan_outputs(files: list[tuple[str, FileRef]]) -> list[PlannedOutput]:
    """One entry per distinct file (temp previews dropped when the prompt saved outputs), each with its own name.

    >>> a, b = FileRef(filename="img.png", subfolder="a"), FileRef(filename="img.png", subfolder="b")
    >>> [p.name for p in plan_outputs([("1", a), ("2", b), ("2", b)])]
    ['a_img.png', 'b_img.png']
    """
    saved = any(ref.type == "output" for _, ref in files)
    seen: set[str] = set()
    planned: list[PlannedOutput] = []
    taken: dict[str, str] = {}  # lower-cased name -> identity (case-insensitive file systems)
    for node, ref in files:
        identity = _identity(ref)
        if identity in seen or (saved and ref.type == "temp"):
            continue
        seen.add(identity)
        name = _readable_name(ref)
        if taken.get(name.casefold(), identity) != identity:
            # Sanitising made two identities alike: a suffix from the identity itself keeps both apart, stably.
            stem, dot, ext = name.rpartition(".")
            tag = hashlib.sha256(identity.encode("utf-8")).hexdigest()[:10]
            name = f"{stem}-{tag}.{ext}" if dot else f"{name}-{tag}"
        taken[name.casefold()] = identity
        planned.append(PlannedOutput(node=node, ref=ref, name=name))
    return planned
