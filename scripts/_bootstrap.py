"""Make ``import movie_director`` work for scripts run from a checkout, with or without `make setup`."""

from __future__ import annotations

import atexit
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def ensure_importable() -> None:
    try:
        import movie_director  # noqa: F401

        return
    except ImportError:
        pass
    # No link in site-packages: expose the checkout under its package name through a temporary folder.
    shim = Path(tempfile.mkdtemp(prefix="md-import-"))
    atexit.register(shutil.rmtree, shim, True)
    (shim / "movie_director").symlink_to(ROOT)
    sys.path.insert(0, str(shim))
