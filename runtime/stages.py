"""The data of a pipeline: stages, how they bind to upstream results, and the checks a graph must pass.

Plain Python: this module never imports bpy and knows no backend. ``runtime/pipeline.py`` runs these (loop side) and
hands them to the caller (home side); a :class:`PipelineSpec` is also what the journal stores.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from .errors import InvalidRequestError
from .jobs import JobOutputs


class StageState(StrEnum):
    PENDING = "pending"  # waiting for the stages it depends on
    RUNNING = "running"  # its job is queued or running
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in (StageState.SUCCEEDED, StageState.FAILED, StageState.CANCELLED)


class Bind(BaseModel):
    """Put a value taken from an upstream stage's result into this stage's request.

    ``select``: ``file`` (the first output file's path), ``file:<media prefix>`` (e.g. ``file:image/``), ``text``,
    or ``data.<key>``. ``into``: a dotted path in the request, e.g. ``images.input_image`` or ``image_start``.
    """

    stage: str
    select: str = "file"
    into: str


class Stage(BaseModel):
    id: str
    backend: str
    kind: str
    request: dict[str, Any] = Field(default_factory=dict)
    depends_on: list[str] = Field(default_factory=list)
    binds: list[Bind] = Field(default_factory=list)
    label: str = ""
    group: str = ""  # e.g. the shot a stage belongs to
    priority: int = 0
    expander: str | None = None  # the registered expander that grows the pipeline from this stage's result
    state: StageState = StageState.PENDING
    job_id: str | None = None
    outputs: JobOutputs | None = None
    error: str = ""
    takes: list[JobOutputs] = Field(default_factory=list)
    started_at: float | None = None
    finished_at: float | None = None


class PipelineSpec(BaseModel):
    id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    title: str = ""
    stages: list[Stage]
    stop_on_error: bool = False
    data: dict[str, Any] = Field(default_factory=dict)


Expander = Callable[[Stage, PipelineSpec], list[Stage]]
EXPANDERS: dict[str, Expander] = {}


def register_expander(name: str, fn: Expander) -> None:
    """Make an expander known by name (pipelines store the name, so a restarted runtime can use it again)."""
    EXPANDERS[name] = fn


def select(outputs: JobOutputs, selector: str) -> Any:
    """The value ``selector`` names in a stage's outputs (see :class:`Bind`)."""
    if selector == "text":
        return outputs.text
    if selector.startswith("data."):
        value: Any = outputs.data
        for part in selector[5:].split("."):
            value = value.get(part) if isinstance(value, dict) else None
        return value
    if selector == "file" or selector.startswith("file:"):
        prefix = selector[5:]
        for f in outputs.files:
            if f.media_type.startswith(prefix):
                return f.path
        raise InvalidRequestError(f"the upstream stage produced no {prefix or 'file'} to use")
    raise InvalidRequestError(f"unknown selector {selector!r}")


def put(request: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    out = json.loads(json.dumps(request))
    target = out
    parts = path.split(".")
    for part in parts[:-1]:
        target = target.setdefault(part, {})
    target[parts[-1]] = value
    return out


def check_acyclic(stages: Iterable[Stage]) -> None:
    """Refuse unknown dependencies and cycles, naming them."""
    graph = {s.id: list(s.depends_on) + [b.stage for b in s.binds] for s in stages}
    for sid, deps in graph.items():
        for dep in deps:
            if dep not in graph:
                raise InvalidRequestError(f"stage {sid} depends on unknown stage {dep}")
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        if state.get(node) == 2:
            return
        if state.get(node) == 1:
            raise InvalidRequestError(f"the pipeline has a cycle: {' -> '.join([*path, node])}")
        state[node] = 1
        for dep in graph[node]:
            visit(dep, [*path, node])
        state[node] = 2

    for node in graph:
        visit(node, [])
