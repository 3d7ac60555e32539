"""Where one prompt stands, built from the websocket messages the server sends about it.

Plain Python: this module never imports bpy. Progress is weighted by node: every node of the prompt that is not cached
counts one share; a sampler's steps fill its own share. The fraction never reaches 1.0 here: the job is complete only
when its outputs are downloaded.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from .protocol import (
    ExecutedData,
    ExecutingData,
    ExecutionCachedData,
    ExecutionErrorData,
    ExecutionInterruptedData,
    ExecutionStartData,
    ExecutionSuccessData,
    FileRef,
    ProgressData,
    ProgressStateData,
    WsMessage,
)

SAMPLER_WEIGHT = 10.0


@dataclass
class Outcome:
    """How a prompt ended on the server."""

    ok: bool
    interrupted: bool = False
    error: ExecutionErrorData | None = None
    files: list[tuple[str, FileRef]] = field(default_factory=list)


@dataclass
class PromptTracker:
    prompt_id: str
    workflow: dict[str, Any]
    class_types: dict[str, str] = field(default_factory=dict)
    started: bool = False
    cached: set[str] = field(default_factory=set)
    finished_nodes: set[str] = field(default_factory=set)
    current_node: str | None = None
    node_fraction: float = 0.0
    step: int | None = None
    total: int | None = None
    files: list[tuple[str, FileRef]] = field(default_factory=list)
    outcome: asyncio.Future[Outcome] | None = None
    resubmitted: bool = False
    lost: bool = False
    #: The runtime's JobContext of the job this prompt belongs to (reports go there).
    ctx: Any = None

    def __post_init__(self) -> None:
        self.class_types = {
            str(k): str(v.get("class_type", "")) for k, v in self.workflow.items() if isinstance(v, dict)
        }
        self.outcome = asyncio.get_running_loop().create_future()

    @property
    def done(self) -> bool:
        return self.outcome is not None and self.outcome.done()

    def resolve(self, outcome: Outcome) -> None:
        if self.outcome is not None and not self.outcome.done():
            self.outcome.set_result(outcome)

    def fraction(self) -> float:
        work = [n for n in self.class_types if n not in self.cached]
        if not work:
            return 0.0
        done = sum(1 for n in work if n in self.finished_nodes)
        partial = (
            self.node_fraction if self.current_node in work and self.current_node not in self.finished_nodes else 0
        )
        return min((done + partial) / len(work), 0.99)

    def stage(self) -> str:
        if not self.started:
            return "queued on the server"
        kind = self.class_types.get(self.current_node or "", "")
        if "Sampler" in kind:
            return "sampling"
        if kind.startswith("Save") or kind.startswith("Preview"):
            return "saving"
        if "Decode" in kind:
            return "decoding"
        return kind or "running"

    def apply(self, msg: WsMessage) -> bool:
        """Update from one message about this prompt; returns True when progress changed."""
        data = msg.data
        if isinstance(data, ExecutionStartData):
            self.started = True
        elif isinstance(data, ExecutionCachedData):
            self.started = True
            self.cached.update(str(n) for n in data.nodes)
        elif isinstance(data, ExecutingData):
            if data.node is None:
                self.resolve(Outcome(ok=True, files=list(self.files)))
                return False
            self._enter(str(data.node))
        elif isinstance(data, ProgressData):
            if data.node is not None:
                self._enter(str(data.node))
            self.step, self.total = int(data.value), int(data.max)
            self.node_fraction = data.value / data.max if data.max > 0 else 0.0
        elif isinstance(data, ProgressStateData):
            for node_id, node in data.nodes.items():
                if node.state == "finished":
                    self.finished_nodes.add(str(node_id))
        elif isinstance(data, ExecutedData):
            self.finished_nodes.add(str(data.node))
            self.files.extend((str(data.node), ref) for ref in data.files())
        elif isinstance(data, ExecutionSuccessData):
            return False  # "executing" with node None follows, after history is written
        elif isinstance(data, ExecutionErrorData):
            self.resolve(Outcome(ok=False, error=data, files=list(self.files)))
            return False
        elif isinstance(data, ExecutionInterruptedData):
            self.resolve(Outcome(ok=False, interrupted=True, files=list(self.files)))
            return False
        else:
            return False
        return True

    def _enter(self, node: str) -> None:
        self.started = True
        if node != self.current_node:
            if self.current_node is not None:
                self.finished_nodes.add(self.current_node)
            self.current_node = node
            self.node_fraction = 0.0
            self.step = self.total = None
