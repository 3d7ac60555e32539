"""The one list of test peers ("stand-ins"): the fake servers the tests, the demo and the benchmarks run against
(ComfyUI's emulator, the Wan2GP, RVC, AudioLDM and LLM stand-ins) and the modules only they use.

A stand-in is never shipped and never counted in coverage. Three places need the list in their own syntax, and each is
derived from (and checked against) this one: the manifest's ``paths_exclude_pattern`` (:func:`manifest_patterns`),
``[tool.coverage.run] omit`` in pyproject.toml (:func:`coverage_omit`), and the zip test (:func:`is_standin`).
``tests/packaging/test_standins.py`` fails when they disagree.
"""

from __future__ import annotations

from fnmatch import fnmatch

#: Paths relative to the repository root; a trailing "/" means a whole folder; "*" matches within one name.
STANDINS: tuple[str, ...] = (
    "clients/*/emulator/",  # ComfyUI's emulator (the folder keeps its name; it is a stand-in like the others)
    "clients/*/standin*",
    "clients/serving.py",
    "clients/media.py",
    "clients/faultproxy.py",
)


def manifest_patterns() -> list[str]:
    """The manifest's exclude patterns (anchored at the package root)."""
    return [f"/{p}" for p in STANDINS]


def coverage_omit() -> list[str]:
    """coverage.py's omit patterns (matched against absolute file paths)."""
    return [f"*/{p}*" if p.endswith("/") else f"*/{p}" for p in STANDINS]


def is_standin(path: str) -> bool:
    """True for a file (relative posix path) that belongs to a stand-in."""
    for pattern in STANDINS:
        if pattern.endswith("/"):
            parts = path.split("/")
            depth = pattern.count("/")
            if any(fnmatch("/".join(parts[:i]) + "/", pattern) for i in range(depth, len(parts))):
                return True
        elif fnmatch(path, pattern) and path.count("/") == pattern.count("/"):
            return True
    return False
