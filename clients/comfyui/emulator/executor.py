"""Running one prompt with the event sequence a real 0.3.75 server sends (PromptExecutor.execute_async).

Per prompt: ``execution_start``, ``execution_cached``, then for every staged node ``progress_state`` (running),
``executing``, per step ``progress_state`` + (event 4 preview) + ``progress`` + (event 1 preview), ``executed`` for
nodes with UI output (also for cached output nodes) and ``progress_state`` (finished); finally ``execution_success``
or ``execution_error``/``execution_interrupted``. Routing follows the real server: without a client_id, ``executing``,
``executed`` and the execution_* messages are not sent, while progress frames go to every socket.
"""

from __future__ import annotations

import asyncio
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Protocol

from PIL import Image

from .. import protocol
from .graph import ExecutionList, full_type_name, is_link, node_signatures
from .nodes import Folders, InterruptProcessing, NodeDef, NodeResult, RunContext, encode_preview


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class QueueItem:
    """One queued prompt; ``as_list`` is the 5-item form /queue and /history show."""

    number: float
    prompt_id: str
    prompt: dict[str, Any]
    extra_data: dict[str, Any]
    outputs: list[str]
    sensitive: dict[str, Any] = field(default_factory=dict)
    seq: int = 0

    def sort_key(self) -> tuple[float, int]:
        return (self.number, self.seq)

    def as_list(self) -> list[Any]:
        return [self.number, self.prompt_id, self.prompt, self.extra_data, self.outputs]


@dataclass
class CacheEntry:
    outputs: tuple[Any, ...]
    ui: dict[str, Any] | None  # {"output": ..., "meta": ...} as the real cache keeps it


class PromptServer(Protocol):
    """What a run needs of the server that runs it (the emulator's ``ComfyEmulator``)."""

    cache: dict[str, CacheEntry]
    registry: dict[str, NodeDef]
    last_node_id: str | None
    drop_ws_after_steps: int | None

    @property
    def folders(self) -> Folders: ...

    def send(self, event: str, data: Any, sid: str | None) -> None: ...

    def send_bytes(self, frame: bytes, sid: str | None) -> None: ...

    def drop_websockets(self) -> None: ...

    def supports_preview_metadata(self, sid: str | None) -> bool: ...

    def check_interrupt(self) -> None: ...

    async def interruptible_sleep(self, delay: float | None) -> None: ...


@dataclass
class RunResult:
    success: bool
    messages: list[tuple[str, dict[str, Any]]]
    outputs: dict[str, Any]
    meta: dict[str, Any]


def format_value(value: Any) -> Any:
    if value is None or isinstance(value, (int, float, bool, str)):
        return value
    return str(value)


class _Failure(Exception):
    def __init__(self, node_id: str, interrupted: bool, details: dict[str, Any] | None = None) -> None:
        super().__init__(node_id)
        self.node_id = node_id
        self.interrupted = interrupted
        self.details = details or {}


class PromptRun:
    """Executes one QueueItem against the emulator's registry, cache and sockets."""

    def __init__(self, server: PromptServer, item: QueueItem, fail: bool) -> None:
        self.server = server
        self.item = item
        self.prompt = item.prompt
        self.prompt_id = item.prompt_id
        self.client_id: str | None = item.extra_data.get("client_id") if isinstance(item.extra_data, dict) else None
        if self.client_id is not None and not isinstance(self.client_id, str):
            self.client_id = str(self.client_id)
        self.fail = fail
        self.messages: list[tuple[str, dict[str, Any]]] = []
        self.progress_nodes: dict[str, dict[str, Any]] = {}
        self.values: dict[str, tuple[Any, ...]] = {}
        self.ui_outputs: dict[str, Any] = {}
        self.meta: dict[str, Any] = {}
        self.executed: list[str] = []
        self.steps_sent = 0

    # ---- sending

    def send(self, event: str, data: dict[str, Any]) -> None:
        self.server.send(event, data, self.client_id)

    def add_message(self, event: str, data: dict[str, Any], broadcast: bool) -> None:
        data = {**data, "timestamp": now_ms()}
        self.messages.append((event, data))
        if self.client_id is not None or broadcast:
            self.send(event, data)

    def _send_progress_state(self) -> None:
        nodes = {
            node_id: {
                "value": entry["value"],
                "max": entry["max"],
                "state": entry["state"],
                "node_id": node_id,
                "prompt_id": self.prompt_id,
                "display_node_id": node_id,
                "parent_node_id": None,
                "real_node_id": node_id,
            }
            for node_id, entry in self.progress_nodes.items()
            if entry["state"] != "pending"
        }
        self.send("progress_state", {"prompt_id": self.prompt_id, "nodes": nodes})

    def _entry(self, node_id: str) -> dict[str, Any]:
        return self.progress_nodes.setdefault(node_id, {"state": "pending", "value": 0, "max": 1})

    def start_progress(self, node_id: str) -> None:
        self._entry(node_id).update(state="running", value=0.0, max=1.0)
        self._send_progress_state()

    def finish_progress(self, node_id: str) -> None:
        entry = self._entry(node_id)
        entry.update(state="finished", value=entry["max"])
        self._send_progress_state()

    # ---- the hooks a node gets

    async def _progress(self, node_id: str, value: int, total: int, preview: Image.Image | None) -> None:
        self.server.check_interrupt()
        self._entry(node_id).update(state="running", value=value, max=total)
        self._send_progress_state()
        jpeg = None
        if preview is not None:
            if preview.width * preview.height > 256 * 256:
                jpeg = await asyncio.to_thread(encode_preview, preview)
            else:
                jpeg = encode_preview(preview)
        with_metadata = self.server.supports_preview_metadata(self.client_id)
        if jpeg is not None and with_metadata:
            metadata = {
                "node_id": node_id,
                "prompt_id": self.prompt_id,
                "display_node_id": node_id,
                "parent_node_id": None,
                "real_node_id": node_id,
                "image_type": "image/jpeg",
            }
            self.server.send_bytes(protocol.encode_preview_frame_with_metadata(jpeg, metadata), self.client_id)
        self.send("progress", {"value": value, "max": total, "prompt_id": self.prompt_id, "node": node_id})
        if jpeg is not None and not with_metadata:
            self.server.send_bytes(protocol.encode_preview_frame(jpeg, protocol.PreviewFormat.JPEG), self.client_id)
        self.steps_sent += 1
        if self.server.drop_ws_after_steps is not None and self.steps_sent == self.server.drop_ws_after_steps:
            self.server.drop_websockets()

    # ---- running

    def _value(self, node_id: str, sigs: dict[str, str]) -> tuple[Any, ...]:
        if node_id in self.values:
            return self.values[node_id]
        return self.server.cache[sigs[node_id]].outputs

    async def execute(self) -> RunResult:
        server = self.server
        self.add_message("execution_start", {"prompt_id": self.prompt_id}, broadcast=False)
        sigs = node_signatures(self.prompt, server.registry, server.folders)
        keep = set(sigs.values())
        for key in [k for k in server.cache if k not in keep]:
            del server.cache[key]
        cached_nodes = [n for n in self.prompt if sigs.get(n) in server.cache]
        self.add_message("execution_cached", {"nodes": cached_nodes, "prompt_id": self.prompt_id}, broadcast=False)

        def is_cached(node_id: str) -> bool:
            return sigs.get(node_id) in server.cache

        execution = ExecutionList(self.prompt, server.registry, is_cached)
        for node_id in self.item.outputs:
            execution.add_node(node_id)
        success = True
        try:
            while not execution.is_empty():
                try:
                    node_id = execution.stage()
                except Exception as ex:  # a dependency cycle: reported against the first pending node
                    node_id = next(iter(execution.pending))
                    raise _Failure(node_id, False, self._error_details(ex, {})) from None
                await self._execute_node(node_id, sigs)
                execution.complete(node_id)
        except _Failure as failure:
            success = False
            self._report_failure(failure)
        else:
            self.add_message("execution_success", {"prompt_id": self.prompt_id}, broadcast=False)
        server.last_node_id = None
        return RunResult(success, self.messages, self.ui_outputs, self.meta)

    def _report_failure(self, failure: _Failure) -> None:
        node = self.prompt.get(failure.node_id)
        class_type = node.get("class_type") if isinstance(node, dict) else None
        base = {
            "prompt_id": self.prompt_id,
            "node_id": failure.node_id,
            "node_type": class_type,
            "executed": list(self.executed),
        }
        if failure.interrupted:
            self.add_message("execution_interrupted", base, broadcast=True)
            return
        details = failure.details
        mes = {
            **base,
            "exception_message": details.get("exception_message", ""),
            "exception_type": details.get("exception_type", ""),
            "traceback": details.get("traceback", []),
            "current_inputs": details.get("current_inputs", {}),
            "current_outputs": list(self.prompt),
        }
        self.add_message("execution_error", mes, broadcast=False)

    @staticmethod
    def _error_details(ex: BaseException, kwargs: dict[str, Any]) -> dict[str, Any]:
        return {
            "exception_message": f"{ex}\n",
            "exception_type": full_type_name(type(ex)),
            "traceback": traceback.format_tb(ex.__traceback__),
            "current_inputs": {name: [format_value(v)] for name, v in kwargs.items()},
        }

    async def _execute_node(self, node_id: str, sigs: dict[str, str]) -> None:
        server = self.server
        node = self.prompt[node_id]
        nodedef = server.registry[node["class_type"]]
        fail_here, self.fail = self.fail, False
        cached = None if fail_here else server.cache.get(sigs[node_id])
        if cached is not None:
            if self.client_id is not None:
                output = cached.ui.get("output") if cached.ui else None
                self.send(
                    "executed",
                    {"node": node_id, "display_node": node_id, "output": output, "prompt_id": self.prompt_id},
                )
            if cached.ui is not None:
                self.ui_outputs[node_id] = cached.ui["output"]
                self.meta[node_id] = cached.ui["meta"]
            self.finish_progress(node_id)
            self.values[node_id] = cached.outputs
            return

        self.start_progress(node_id)
        if self.client_id is not None:
            server.last_node_id = node_id
            self.send("executing", {"node": node_id, "display_node": node_id, "prompt_id": self.prompt_id})
        kwargs: dict[str, Any] = {}
        try:
            class_inputs = nodedef.input_types(server.folders)
            declared = list(class_inputs.get("required") or {}) + list(class_inputs.get("optional") or {})
            inputs = node["inputs"]
            for name in declared:
                if name not in inputs:
                    continue
                value = inputs[name]
                if is_link(value):
                    value = self._value(value[0], sigs)[int(value[1])]
                kwargs[name] = value
            server.check_interrupt()
            if fail_here:
                raise RuntimeError("Emulated failure: the ComfyUI emulator was told to fail this prompt (fail_next)")
            ctx = RunContext(
                folders=server.folders,
                node_id=node_id,
                prompt=self.prompt,
                extra_data=self.item.extra_data,
                progress=lambda value, total, preview: self._progress(node_id, value, total, preview),
                sleep=server.interruptible_sleep,
            )
            if nodedef.is_async:
                result = await nodedef.run(ctx, **kwargs)
            else:
                result = await asyncio.to_thread(nodedef.run, ctx, **kwargs)
        except InterruptProcessing:
            raise _Failure(node_id, True) from None
        except Exception as ex:
            raise _Failure(node_id, False, self._error_details(ex, kwargs)) from None
        if not isinstance(result, NodeResult):
            result = NodeResult(tuple(result) if isinstance(result, (tuple, list)) else (result,))
        ui_entry = None
        if result.ui:
            meta = {"node_id": node_id, "display_node": node_id, "parent_node": None, "real_node_id": node_id}
            ui_entry = {"output": result.ui, "meta": meta}
            self.ui_outputs[node_id] = result.ui
            self.meta[node_id] = meta
            if self.client_id is not None:
                self.send(
                    "executed",
                    {"node": node_id, "display_node": node_id, "output": result.ui, "prompt_id": self.prompt_id},
                )
        self.values[node_id] = result.outputs
        server.cache[sigs[node_id]] = CacheEntry(result.outputs, ui_entry)
        self.executed.append(node_id)
        self.finish_progress(node_id)
