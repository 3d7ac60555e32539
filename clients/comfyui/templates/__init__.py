"""ComfyUI workflow templates: built-in graphs and the film-maker's own, with named, validated parameters.

Plain Python: nothing here imports bpy. Built-in templates are JSON data files in ``builtin/``; see :mod:`.catalog`
for the user file formats and :mod:`.convert` for the ``param:<name>`` / ``$<name>`` node-title convention.
"""

from __future__ import annotations

from .catalog import (
    BUILTIN_DIR,
    TemplateCatalog,
    load_template_file,
    missing_requirements,
    template_from_data,
)
from .convert import infer_params, is_api_workflow, ui_to_api
from .schema import PRESETS, RANDOM_SEED_MAX, ParamSpec, ParamTarget, Template
from .ui_graph import is_ui_workflow

__all__ = [
    "BUILTIN_DIR",
    "PRESETS",
    "RANDOM_SEED_MAX",
    "ParamSpec",
    "ParamTarget",
    "Template",
    "TemplateCatalog",
    "infer_params",
    "is_api_workflow",
    "is_ui_workflow",
    "load_template_file",
    "missing_requirements",
    "template_from_data",
    "ui_to_api",
]
