"""The sidebar's live preview in real Blender: many jobs previewing at once cost the main thread one image update per
pump at most, the image is loaded from memory (no file written on the main thread), one job keeps the display until
it ends, and the preview through the real ComfyUI path (emulator) lands in the image."""

from __future__ import annotations

import asyncio
import io
import os
import queue
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from importlib import import_module
from types import ModuleType
from typing import Any

import pytest
from blender_support import MODULE
from movie_director.clients.comfyui.emulator import EmulatorThread

JOBS = 16
STEPS = 30

#: Files opened for writing, renamed or removed on the main thread while ``_watching`` is set (an audit hook can
#: never be removed, so one hook serves the whole session and records only while a test asks it to).
_writes: list[tuple[str, Any]] = []
_watching = threading.Event()
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if not _watching.is_set() or threading.current_thread() is not threading.main_thread():
        return
    if event == "open":
        path, mode, flags = args
        if (mode and any(c in str(mode) for c in "wax+")) or (isinstance(flags, int) and flags & _WRITE_FLAGS):
            _writes.append((event, path))
    elif event in ("os.rename", "os.remove", "os.truncate", "shutil.copyfile"):
        _writes.append((event, args[0]))


sys.addaudithook(_audit)


def _jpeg(size: tuple[int, int], shade: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", size, (shade, 255 - shade, 128)).save(buf, "JPEG")
    return buf.getvalue()


@pytest.fixture
def previewing(addon: ModuleType) -> Iterator[tuple[Any, dict[str, list[bytes]]]]:
    """The add-on's runtime with an in-process backend whose jobs send a fresh preview every 2 ms (the server's side
    of the test); yields the runtime and, per job id, the previews it sent in order."""
    backend = import_module(f"{addon.__name__}.runtime.backend")
    jobs = import_module(f"{addon.__name__}.runtime.jobs")
    frames = [_jpeg((64 + 8 * i, 48), 16 * i) for i in range(8)]
    sent: dict[str, list[bytes]] = {}

    class PreviewClient(backend.BackendClient):  # type: ignore[name-defined,misc]
        name = "previews"

        async def submit(self, job: Any, ctx: Any) -> None:
            return None

        async def get_result(self, job: Any, ctx: Any) -> Any:
            ctx.mark_running()
            mine = sent.setdefault(job.id, [])
            for i in range(STEPS):
                await asyncio.sleep(0.002)
                # The same object every 8 steps (bytes(b) is b): a preview may come back while it is on screen.
                data = frames[i % len(frames)]
                mine.append(data)
                ctx.report_progress((i + 1) / STEPS, step=i + 1, preview=data, preview_media_type="image/jpeg")
            return jobs.JobOutputs()

        async def health(self) -> Any:
            return backend.HealthInfo(ok=True, url="previews", message="in-process", version="1")

    rt = addon.addon_runtime.runtime()
    rt.register_backend("previews", PreviewClient, backend.BackendConfig(name="previews", concurrency=JOBS))
    yield rt, sent
    addon.addon_runtime.shutdown()


def test_sixteen_previewing_jobs_update_the_image_at_most_once_per_pump_and_write_no_file(
    addon: ModuleType, previewing: tuple[Any, dict[str, list[bytes]]]
) -> None:
    import bpy

    rt, sent = previewing
    preview = import_module(f"{addon.__name__}.operators.preview")
    handles = [preview.watch_previews(rt.submit("previews", "image", {})) for _ in range(JOBS)]
    before = set(os.listdir(tempfile.gettempdir()))
    shown_jobs: list[str] = []
    per_pump: list[int] = []
    _writes.clear()
    _watching.set()
    try:
        end = time.monotonic() + 30
        while not all(h.done for h in handles) and time.monotonic() < end:
            updates = preview.display.updates
            rt.pump()
            per_pump.append(preview.display.updates - updates)
            if preview.display.job_id and (not shown_jobs or shown_jobs[-1] != preview.display.job_id):
                shown_jobs.append(preview.display.job_id)
            with rt.done_condition:  # the next timer tick (Blender's timer never fires in module mode)
                rt.done_condition.wait(0.005)
    finally:
        _watching.clear()
    assert all(h.status().state.value == "succeeded" for h in handles)
    assert max(per_pump) == 1 and sum(per_pump) >= 1  # the image changed, never twice in one pump
    assert _writes == []  # nothing written, renamed or removed on the main thread
    assert not {f for f in set(os.listdir(tempfile.gettempdir())) - before if f.startswith("movie_director")}
    # One job kept the display while it ran: each job appears at most once in the display's history.
    assert len(shown_jobs) == len(set(shown_jobs))
    image = bpy.data.images[preview.PREVIEW_IMAGE]
    assert image.packed_file is not None  # loaded from memory, not from a file
    # The job on display ended: the image holds the last preview that job sent, and Blender decodes it.
    assert preview.display.shown_job in sent
    assert preview.display.job_id is None  # free for the next job
    last = sent[preview.display.shown_job][-1]
    assert bytes(image.packed_file.data) == last  # its newest, never an older one the rate limit held back
    assert tuple(image.size) == (64 + 8 * ((STEPS - 1) % 8), 48)


def test_a_comfyui_job_through_the_emulator_shows_its_preview_from_memory(addon: ModuleType) -> None:
    import bpy

    preview = import_module(f"{addon.__name__}.operators.preview")
    with EmulatorThread(step_delay=0.02) as emu:
        prefs = bpy.context.preferences.addons[MODULE].preferences
        prefs.comfyui.urls = emu.url
        try:
            handle = addon.api.generate_image("a lighthouse", width=256, height=256, steps=4, seed=3)
            job = handle.wait(30)
            assert job.state.value == "succeeded"
        finally:
            addon.addon_runtime.shutdown()
            prefs.comfyui.urls = ""
    assert job.progress.preview, "the emulator sent no preview"
    image = bpy.data.images[preview.PREVIEW_IMAGE]
    assert bytes(image.packed_file.data) == job.progress.preview  # the last preview the job had
    assert image.size[0] > 0 and image.size[1] > 0


class Scripted:
    """One job of an in-process backend that does what the test says, when it says: ``send(preview_bytes)`` reports
    a preview, ``send("text")`` a log line, ``send(None)`` ends the job; each waits until the loop has posted it.
    ``pump_until`` pumps as Blender's timer does, recording how many times the image changed in each pump."""

    def __init__(self, addon: ModuleType) -> None:
        backend = import_module(f"{addon.__name__}.runtime.backend")
        jobs = import_module(f"{addon.__name__}.runtime.jobs")
        self.preview = import_module(f"{addon.__name__}.operators.preview")
        self.per_pump: list[int] = []
        script: queue.Queue[bytes | str | None] = queue.Queue()
        posted = threading.Semaphore(0)
        self._script, self._posted = script, posted

        class ScriptedClient(backend.BackendClient):  # type: ignore[name-defined,misc]
            name = "scripted"

            async def submit(self, job: Any, ctx: Any) -> None:
                return None

            async def get_result(self, job: Any, ctx: Any) -> Any:
                ctx.mark_running()
                while (item := await asyncio.to_thread(script.get, True, 10)) is not None:
                    if isinstance(item, str):
                        ctx.log(item)
                    else:
                        ctx.report_progress(step=1, preview=item, preview_media_type="image/jpeg")
                    posted.release()
                return jobs.JobOutputs()

            async def health(self) -> Any:
                return backend.HealthInfo(ok=True, url="scripted", message="in-process", version="1")

        self.rt = addon.addon_runtime.runtime()
        self.rt.register_backend("scripted", ScriptedClient, backend.BackendConfig(name="scripted"))
        self.handle = self.preview.watch_previews(self.rt.submit("scripted", "image", {}))

    def send(self, *items: bytes | str, wait: bool = True) -> None:
        for item in items:
            self._script.put(item)
            assert not wait or self._posted.acquire(timeout=10)

    def end(self) -> None:
        """End the job and wait until it ended on the loop: its last messages all wait for the next pump."""
        self._script.put(None)
        self.rt.done_signal.sleep(self.handle, 10)
        assert self.handle.final is not None

    def pump_until(self, done: Any) -> None:
        end = time.monotonic() + 10
        while not done() and time.monotonic() < end:
            updates = self.preview.display.updates
            self.rt.pump()
            self.per_pump.append(self.preview.display.updates - updates)
            with self.rt.done_condition:
                self.rt.done_condition.wait(0.005)
        assert done()


@pytest.fixture
def scripted(addon: ModuleType) -> Iterator[Scripted]:
    job = Scripted(addon)
    yield job
    addon.addon_runtime.shutdown()


@pytest.mark.parametrize("together", [False, True], ids=["end-in-its-own-pump", "end-in-the-same-pump"])
def test_the_job_ends_showing_its_newest_preview_never_one_the_rate_limit_held_back(
    scripted: Scripted, monkeypatch: pytest.MonkeyPatch, together: bool
) -> None:
    """The ordering behind the race the sixteen-job test saw: preview A shown, B held back by the rate limit, then A
    again (the same object: the newest preview is already on screen) and the end. The image must end on A, not on
    the older B; ``together``: the last preview and the end reach the home thread in one pump."""
    import bpy

    preview, handle = scripted.preview, scripted.handle
    monkeypatch.setattr(preview, "PREVIEW_HZ", 0.01)  # one image change per 100 s: B is surely held back
    a, b = _jpeg((104, 48), 200), _jpeg((96, 48), 40)
    for data in (a, b):
        scripted.send(data)
        scripted.pump_until(lambda data=data: handle.status().progress.preview is data)
    assert preview.display.shown is a and preview.display.pending is b  # B is held back
    if together:
        scripted.send(a, wait=False)  # end() waits for both
    else:
        scripted.send(a)
        scripted.pump_until(lambda: handle.status().progress.preview is a)
    scripted.end()
    scripted.pump_until(lambda: handle.done)
    assert handle.status().state.value == "succeeded"
    assert max(scripted.per_pump) == 1  # never two image changes in one pump
    image = bpy.data.images[preview.PREVIEW_IMAGE]
    assert bytes(image.packed_file.data) == a  # the newest preview, not the held-back B
    assert tuple(image.size) == (104, 48)
    assert preview.display.job_id is None and preview.display.pending is None


def test_a_log_line_between_the_last_previews_still_changes_the_image_once_per_pump(
    scripted: Scripted, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Preview B, a log line (which delivers B at once, to keep the order), preview C and the end, all in one pump,
    with no rate limit in the way: B may be shown, then C must wait for the next pump, and the image ends on C."""
    import bpy

    preview, handle = scripted.preview, scripted.handle
    monkeypatch.setattr(preview, "PREVIEW_HZ", 1e6)  # no rate limit: only the once-per-pump rule holds C back
    a, b, c = _jpeg((64, 48), 10), _jpeg((96, 48), 40), _jpeg((104, 48), 200)
    scripted.send(a)
    scripted.pump_until(lambda: preview.display.shown is a)
    scripted.send(b, "step 2 of 2", c)
    scripted.end()
    scripted.pump_until(lambda: handle.done)
    scripted.pump_until(lambda: preview.display.job_id is None)
    assert max(scripted.per_pump) == 1  # never two image changes in one pump
    image = bpy.data.images[preview.PREVIEW_IMAGE]
    assert bytes(image.packed_file.data) == c
    assert tuple(image.size) == (104, 48)
    assert preview.display.pending is None
