"""The hand-off's one error, in a module of its own so that the Blender layer can name it (``except HandoffError``)
without loading the cut's data classes or any writer when the add-on is enabled.

Plain Python: this module never imports bpy.
"""

from __future__ import annotations


class HandoffError(Exception):
    """Why a cut cannot be handed off (empty scene, missing media...), worded for the user."""
