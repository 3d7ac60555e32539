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


@pytest.mark.parametrize("together", [False, True], ids=["end-in-its-own-pump", "end-in-the-same-pump"])
def test_the_job_ends_showing_its_newest_preview_never_one_the_rate_limit_held_back(
    addon: ModuleType, monkeypatch: pytest.MonkeyPatch, together: bool
) -> None:
    """The ordering behind the race the sixteen-job test saw: preview A shown, B held back by the rate limit, then A
    again (the same object: the newest preview is already on screen) and the end. The image must end on A, not on
    the older B; ``together``: the last preview and the end reach the home thread in one pump."""
    import bpy

    backend = import_module(f"{addon.__name__}.runtime.backend")
    jobs = import_module(f"{addon.__name__}.runtime.jobs")
    preview = import_module(f"{addon.__name__}.operators.preview")
    monkeypatch.setattr(preview, "PREVIEW_HZ", 0.01)  # one image change per 100 s: B is surely held back
    a, b = _jpeg((104, 48), 200), _jpeg((96, 48), 40)
    script: queue.Queue[bytes | None] = queue.Queue()
    posted = threading.Semaphore(0)

    class ScriptedClient(backend.BackendClient):  # type: ignore[name-defined,misc]
        name = "scripted"

        async def submit(self, job: Any, ctx: Any) -> None:
            return None

        async def get_result(self, job: Any, ctx: Any) -> Any:
            ctx.mark_running()
            while (data := await asyncio.to_thread(script.get, True, 10)) is not None:
                ctx.report_progress(step=1, preview=data, preview_media_type="image/jpeg")
                posted.release()
            return jobs.JobOutputs()

        async def health(self) -> Any:
            return backend.HealthInfo(ok=True, url="scripted", message="in-process", version="1")

    rt = addon.addon_runtime.runtime()
    rt.register_backend("scripted", ScriptedClient, backend.BackendConfig(name="scripted"))
    try:
        handle = preview.watch_previews(rt.submit("scripted", "image", {}))
        per_pump: list[int] = []

        def pump_until(done: Any) -> None:
            end = time.monotonic() + 10
            while not done() and time.monotonic() < end:
                updates = preview.display.updates
                rt.pump()
                per_pump.append(preview.display.updates - updates)
                with rt.done_condition:
                    rt.done_condition.wait(0.005)
            assert done()

        for data in (a, b):
            script.put(data)
            assert posted.acquire(timeout=10)
            pump_until(lambda data=data: handle.status().progress.preview is data)
        assert preview.display.shown is a and preview.display.pending is b  # B is held back
        script.put(a)
        if not together:
            assert posted.acquire(timeout=10)
            pump_until(lambda: handle.status().progress.preview is a)
        script.put(None)
        rt.done_signal.sleep(handle, 10)  # the job ended on the loop: its last messages all wait for the next pump
        assert handle.final is not None
        pump_until(lambda: handle.done)
    finally:
        addon.addon_runtime.shutdown()
    assert handle.status().state.value == "succeeded"
    assert max(per_pump) == 1  # never two image changes in one pump
    image = bpy.data.images[preview.PREVIEW_IMAGE]
    assert bytes(image.packed_file.data) == a  # the newest preview, not the held-back B
    assert tuple(image.size) == (104, 48)
    assert preview.display.job_id is None and preview.display.pending is None
