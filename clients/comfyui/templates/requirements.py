"""What a server lacks to run a workflow: one rule for a template before a job fills it and for the workflow the
client is about to send.

Plain Python: this module never imports bpy. Node types the server does not know come first; then each combo input
whose value the server does not offer. A model file is named with what the server has and where such files go
(``models.missing_phrase``); an upload input is never judged (its file reaches the server per job), nor an input a
job fills in itself (``per_job``: a template's image and model parameters).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from ..models import MODEL_KINDS, missing_phrase
from .convert import allowed_values, input_specs
from .schema import is_model_file

#: Input names whose value is a file uploaded for the job, not a choice the server must already have.
FILE_INPUTS = frozenset({"image", "audio", "video", "upload", "file"})
_MODEL_INPUTS = frozenset((k.node, k.input) for k in MODEL_KINDS.values())


def _is_upload(name: str, spec: Any) -> bool:
    options = spec[1] if isinstance(spec, (list, tuple)) and len(spec) > 1 and isinstance(spec[1], Mapping) else {}
    return name in FILE_INPUTS or bool(options.get("image_upload") or options.get("audio_upload"))


#: Per node type, each input's (spec, allowed values), for the last ``object_info`` asked about (by identity: a
#: refresh brings a new dict). Every job is checked before it is sent; the server's catalogue rarely changes.
_inputs_cache: tuple[object, dict[str, dict[str, tuple[Any, list[Any] | None]]]] = (None, {})


def _inputs_of(object_info: Mapping[str, Any], class_type: str, info: Any) -> dict[str, tuple[Any, list[Any] | None]]:
    global _inputs_cache
    known, table = _inputs_cache
    if known is not object_info:
        table = {}
        _inputs_cache = (object_info, table)
    entry = table.get(class_type)
    if entry is None:
        entry = table[class_type] = {name: (spec, allowed_values(spec)) for name, spec in input_specs(info)}
    return entry


def missing_in_workflow(
    workflow: Mapping[str, Any],
    object_info: Mapping[str, Any],
    *,
    per_job: Collection[tuple[str, str]] = (),
    required_models: Mapping[str, list[str]] | None = None,
) -> list[str]:
    """Readable phrases for what ``object_info``'s server lacks to run the API-format ``workflow``."""
    found: list[str] = []
    for nid, node in workflow.items():
        if not isinstance(node, Mapping):
            continue
        class_type = str(node.get("class_type", ""))
        info = object_info.get(class_type)
        if info is None:
            found.append(f"node type {class_type}")
            continue
        specs = _inputs_of(object_info, class_type, info)
        for name, value in (node.get("inputs") or {}).items():
            spec, allowed = specs.get(name, (None, None))
            if allowed is None or not isinstance(value, str) or value in allowed or (nid, name) in per_job:
                continue
            if _is_upload(name, spec):
                continue
            named_model = value in (required_models or {}).get(class_type, [])
            if is_model_file(value) or named_model or (class_type, name) in _MODEL_INPUTS:
                found.append(missing_phrase(class_type, name, value, allowed))
            else:
                found.append(f"value {value!r} for {class_type}.{name}")
    return list(dict.fromkeys(found))
