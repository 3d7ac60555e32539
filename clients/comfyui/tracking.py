"""Where one prompt stands, built from the websocket messages the server sends about it, and its reports to the job.

Plain Python: this module never imports bpy. As krita-ai-diffusion's ``Progress`` object does, the tracker owns its
state and its reports: the connection hands it messages, it tells its job (a :class:`JobReports`, the runtime's
``JobContext``) what changed. How a prompt ended, read from the websocket or from ``/history``, is an
:class:`Outcome`; :func:`outcome_from_history` lives here beside the tracker that builds one from messages.

Progress is weighted as krita-ai-diffusion weighs it: 0.2 for the nodes done, 0.8 for the sampler steps done (of the
steps every sampler of the workflow will take). The fraction never reaches 1.0 here: the job is complete only when its
outputs are downloaded.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import ValidationError

from .protocol import (
    ExecutedData,
    ExecutingData,
    ExecutionCachedData,
    ExecutionErrorData,
    ExecutionInterruptedData,
    ExecutionStartData,
    ExecutionSuccessData,
    FileRef,
    HistoryEntry,
    ProgressData,
    ProgressStateData,
    WsMessage,
    collect_file_refs,
)

#: Share of the fraction for sampler steps; the rest is for nodes done (krita-ai-diffusion's 0.8 / 0.2).
SAMPLER_WEIGHT = 0.8
NODE_WEIGHT = 1.0 - SAMPLER_WEIGHT
#: Highest fraction a tracker reports: the job ends at 1.0 only once its files are downloaded.
MAX_FRACTION = 0.99


class JobReports(Protocol):
    """What a tracker tells its job (the runtime's ``JobContext`` has these)."""

    def mark_running(self) -> None: ...

    def mark_resubmitted(self, remote_id: str | None = None) -> None: ...

    def report_progress(
        self,
        fraction: float | None = None,
        *,
        stage: str | None = None,
        message: str | None = None,
        step: int | None = None,
        total: int | None = None,
        preview: bytes | None = None,
        preview_media_type: str | None = None,
    ) -> None: ...

    def log(self, line: str) -> None: ...


@dataclass
class Outcome:
    """How a prompt ended on the server."""

    ok: bool
    interrupted: bool = False
    error: ExecutionErrorData | None = None
    files: list[tuple[str, FileRef]] = field(default_factory=list)
    #: Output nodes the server reported (a node may report no file, e.g. a text output).
    output_nodes: int = 0


def outcome_from_history(entry: HistoryEntry) -> Outcome:
    """How a finished prompt ended, from its ``/history`` entry."""
    files = [(str(node), ref) for node, output in entry.outputs.items() for ref in collect_file_refs(output)]
    count = len(entry.outputs)
    if entry.succeeded:
        return Outcome(ok=True, files=files, output_nodes=count)
    error = entry.message("execution_error")
    if error is not None:
        try:
            parsed = ExecutionErrorData.model_validate(error)
        except ValidationError:
            pass
        else:
            return Outcome(ok=False, error=parsed, files=files, output_nodes=count)
    return Outcome(ok=False, interrupted=True, files=files, output_nodes=count)


def _sampler_steps(workflow: dict[str, Any]) -> dict[str, int]:
    """Steps each sampler node of the workflow will take, where the workflow says so with a literal."""
    steps: dict[str, int] = {}
    for node_id, node in workflow.items():
        if not isinstance(node, dict) or "Sampler" not in str(node.get("class_type", "")):
            continue
        value = (node.get("inputs") or {}).get("steps")
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            steps[str(node_id)] = value
    return steps


@dataclass
class PromptTracker:
    prompt_id: str
    workflow: dict[str, Any]
    #: The job this prompt belongs to: every report goes there.
    job: JobReports | None = None
    #: The websocket client id the prompt was sent with: its events go to that socket only.
    client_id: str = ""
    class_types: dict[str, str] = field(default_factory=dict)
    started: bool = False
    cached: set[str] = field(default_factory=set)
    finished_nodes: set[str] = field(default_factory=set)
    current_node: str | None = None
    step: int | None = None
    total: int | None = None
    #: Sampler steps done per node (the newest ``progress`` value of each).
    steps_done: dict[str, float] = field(default_factory=dict)
    #: Steps per node: from the workflow, then from ``progress`` max as it arrives.
    steps_total: dict[str, float] = field(default_factory=dict)
    files: list[tuple[str, FileRef]] = field(default_factory=list)
    output_nodes: set[str] = field(default_factory=set)
    outcome: asyncio.Future[Outcome] | None = None
    resubmitted: bool = False
    lost: bool = False
    #: Why the prompt ended on our side (e.g. sending it again failed): the job fails with it.
    failure: Exception | None = None
    #: 1-based place in the server's queue while pending (None once running or unknown).
    queue_position: int | None = None
    #: A report is scheduled for the end of the current burst of messages.
    _report_due: bool = field(default=False, repr=False)

    def __post_init__(self) -> None:
        self.class_types = {
            str(k): str(v.get("class_type", "")) for k, v in self.workflow.items() if isinstance(v, dict)
        }
        self.steps_total = {k: float(v) for k, v in _sampler_steps(self.workflow).items()}
        self.outcome = asyncio.get_running_loop().create_future()

    @property
    def done(self) -> bool:
        return self.outcome is not None and self.outcome.done()

    def resolve(self, outcome: Outcome) -> None:
        if self.outcome is not None and not self.outcome.done():
            self.outcome.set_result(outcome)

    def fail(self, error: Exception) -> None:
        self.failure = error
        self.resolve(Outcome(ok=False, output_nodes=len(self.output_nodes)))

    def restart(self) -> None:
        """The server lost the prompt and it is sent again: forget how far the lost run got."""
        self.started = False
        self.cached.clear()
        self.finished_nodes.clear()
        self.current_node = None
        self.steps_done.clear()
        self.step = self.total = None
        if self.job is not None:
            self.job.mark_resubmitted(self.prompt_id)
            self.job.log("ComfyUI lost the job (did it restart?): sent it again")

    # --- the figures ------------------------------------------------------------------------------------------------
    def fraction(self) -> float:
        """Nodes done weigh NODE_WEIGHT, sampler steps SAMPLER_WEIGHT; cached nodes count for neither (computed for
        every message, so with set operations rather than per-node scans)."""
        types = self.class_types.keys()
        cached = self.cached
        work = len(types - cached) if cached else len(types)
        if not work:
            return 0.0
        finished = self.finished_nodes & types
        nodes_done = len(finished - cached) if cached else len(finished)
        node_part = nodes_done / (work + 1)  # +1: never full until the outputs are in
        total = done = 0.0
        steps_done = self.steps_done
        for node, steps in self.steps_total.items():
            if node not in cached:
                total += steps
                done += min(steps_done.get(node, 0.0), steps)
        if total <= 0:
            return min(node_part, MAX_FRACTION)
        return min(NODE_WEIGHT * node_part + SAMPLER_WEIGHT * done / total, MAX_FRACTION)

    def stage(self) -> str:
        if not self.started:
            if self.queue_position is not None:
                return f"{_ordinal(self.queue_position)} in queue"
            return "queued on the server"
        kind = self.class_types.get(self.current_node or "", "")
        if "Sampler" in kind:
            return "sampling"
        if kind.startswith("Save") or kind.startswith("Preview"):
            return "saving"
        if "Decode" in kind:
            return "decoding"
        return kind or "running"

    # --- reports to the job -----------------------------------------------------------------------------------------
    def report(self) -> None:
        if self.job is None:
            return
        if self.started:
            self.job.mark_running()
        self.job.report_progress(self.fraction(), stage=self.stage(), step=self.step, total=self.total)

    def preview(self, image: bytes, media_type: str) -> None:
        if self.job is not None:
            self.job.report_progress(preview=image, preview_media_type=media_type)

    def text(self, line: str) -> None:
        if self.job is not None:
            self.job.log(line)

    def queued_at(self, position: int | None) -> None:
        """The prompt's own place in the server's queue (1 = next), from GET /queue."""
        if position != self.queue_position and not self.started:
            self.queue_position = position
            self.report()

    # --- messages ---------------------------------------------------------------------------------------------------
    def handle(self, msg: WsMessage) -> None:
        """Apply one message about this prompt; what changed is reported once the messages that arrived together
        are all applied (a burst of a dozen frames is one report, not twelve)."""
        if self.apply(msg) and not self._report_due:
            self._report_due = True
            asyncio.get_running_loop().call_soon(self._report_now)

    def _report_now(self) -> None:
        self._report_due = False
        if not (self.outcome is not None and self.outcome.cancelled()):
            self.report()

    def apply(self, msg: WsMessage) -> bool:
        """Update from one message about this prompt; returns True when progress changed."""
        data = msg.data
        if isinstance(data, ProgressData):
            return self._progress(data)
        if isinstance(data, ExecutingData):
            if data.node is None:
                self.resolve(Outcome(ok=True, files=list(self.files), output_nodes=len(self.output_nodes)))
                return False
            self._enter(str(data.node))
        elif isinstance(data, ProgressStateData):  # the most frequent message; mostly it only repeats "running"
            before = len(self.finished_nodes)
            for node_id, state in data.nodes.items():
                if state.state == "finished":
                    self.finished_nodes.add(str(node_id))
            return len(self.finished_nodes) != before
        elif isinstance(data, ExecutionStartData):
            self.started = True
            self.queue_position = None
        elif isinstance(data, ExecutionCachedData):
            self.started = True
            self.queue_position = None
            self.cached.update(str(n) for n in data.nodes)
        elif isinstance(data, ExecutedData):
            node = str(data.node)
            self.finished_nodes.add(node)
            self.output_nodes.add(node)
            self.files.extend((node, ref) for ref in data.files())
        elif isinstance(data, ExecutionSuccessData):
            return False  # "executing" with node None follows, after history is written
        elif isinstance(data, ExecutionErrorData):
            self.resolve(Outcome(ok=False, error=data, files=list(self.files), output_nodes=len(self.output_nodes)))
            return False
        elif isinstance(data, ExecutionInterruptedData):
            outcome = Outcome(ok=False, interrupted=True, files=list(self.files), output_nodes=len(self.output_nodes))
            self.resolve(outcome)
            return False
        else:
            return False
        return True

    def _progress(self, data: ProgressData) -> bool:
        value, maximum = data.value, data.max
        if not (math.isfinite(value) and math.isfinite(maximum)):  # the parser refuses these; a second guard
            return False
        if data.node is not None:
            self._enter(str(data.node))
        node = self.current_node
        self.step, self.total = int(value), int(maximum)
        if node is not None and maximum > 0:  # any node that reports steps weighs as sampling (as krita counts)
            self.steps_done[node] = value
            self.steps_total[node] = maximum
        return True

    def _enter(self, node: str) -> None:
        self.started = True
        self.queue_position = None
        if node != self.current_node:
            if self.current_node is not None:
                self.finished_nodes.add(self.current_node)
            self.current_node = node
            self.step = self.total = None


def _ordinal(n: int) -> str:
    """1 -> '1st', 2 -> '2nd', 11 -> '11th'."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"
