"""A wheel's .pth file, which Blender never runs, runs once when the client needs it (pywin32's, for mcp)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from movie_director.clients.site_paths import apply_pth_files


@pytest.fixture
def wheel_folder(tmp_path: Path) -> Iterator[Path]:
    """A site-packages folder laid out like pywin32's: the .pth adds a sub-folder, then imports a module from it."""
    (tmp_path / "win32" / "lib").mkdir(parents=True)
    (tmp_path / "win32" / "lib" / "md_pth_bootstrap.py").write_text("RAN = True\n")
    (tmp_path / "md_test.pth").write_text("# a comment\nwin32\nwin32/lib\nmissing_folder\nimport md_pth_bootstrap\n")
    (tmp_path / "other.pth").write_text("win32\n")
    saved = list(sys.path)
    sys.path.append(str(tmp_path))  # as Blender adds its wheels' folder
    try:
        yield tmp_path
    finally:
        sys.path[:] = saved
        sys.modules.pop("md_pth_bootstrap", None)


def test_a_named_pth_file_runs_once_like_site_runs_it(wheel_folder: Path) -> None:
    assert str(wheel_folder / "win32" / "lib") not in sys.path
    ran = apply_pth_files(["md_test.pth"])
    assert ran == [str(wheel_folder / "md_test.pth")]
    assert str(wheel_folder / "win32") in sys.path and str(wheel_folder / "win32" / "lib") in sys.path
    assert str(wheel_folder / "missing_folder") not in sys.path  # as site does: only folders that exist
    assert sys.modules["md_pth_bootstrap"].RAN is True
    assert apply_pth_files(["md_test.pth"]) == []  # once per process
    assert sys.path.count(str(wheel_folder / "win32")) == 1


def test_other_pth_files_are_left_alone(wheel_folder: Path) -> None:
    apply_pth_files(["md_absent.pth"])
    assert str(wheel_folder / "win32") not in sys.path
